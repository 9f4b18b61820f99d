DROP INDEX histories_path_id_idx;
