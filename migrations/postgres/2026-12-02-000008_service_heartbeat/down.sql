DROP TABLE service_heartbeat;
