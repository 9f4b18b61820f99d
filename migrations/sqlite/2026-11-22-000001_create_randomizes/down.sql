DROP TABLE randomizes;
