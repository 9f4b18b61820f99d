DROP INDEX histories_method_id_idx;
