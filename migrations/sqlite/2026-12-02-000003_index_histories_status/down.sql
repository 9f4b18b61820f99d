DROP INDEX histories_status_id_idx;
