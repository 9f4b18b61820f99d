DROP INDEX histories_subject_id_idx;
