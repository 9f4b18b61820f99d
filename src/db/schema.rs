// The tables as both migration folders create them. Kept by hand in diesel's
// `print-schema` form; `schema_rs_matches_the_migrations` (tests/api/cli.rs) checks it
// against the migrated databases.

diesel::table! {
    randomizes (id) {
        id -> BigInt,
        original -> Text,
        original_folded -> Text,
        jumbled -> Text,
        version -> Integer,
        created -> Timestamp,
        updated -> Timestamp,
    }
}

diesel::table! {
    histories (id) {
        id -> BigInt,
        request_id -> Text,
        method -> Text,
        path -> Text,
        query -> Nullable<Text>,
        status -> Integer,
        duration_ms -> Double,
        client_ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        subject -> Nullable<Text>,
        created -> Timestamp,
        resource_id -> Nullable<BigInt>,
        token_id -> Nullable<Text>,
        trace_id -> Nullable<Text>,
        chain -> Nullable<BigInt>,
        seq -> Nullable<BigInt>,
        hash -> Nullable<Binary>,
    }
}

diesel::table! {
    randomizes_count (singleton) {
        singleton -> Integer,
        total -> BigInt,
    }
}

diesel::table! {
    service_secrets (name) {
        name -> Text,
        secret -> Binary,
    }
}

diesel::table! {
    service_heartbeat (id) {
        id -> Integer,
        beat -> Timestamp,
    }
}

diesel::table! {
    audit_chains (id) {
        id -> BigInt,
        started -> Timestamp,
    }
}

diesel::table! {
    audit_checkpoints (id) {
        id -> BigInt,
        chain -> BigInt,
        seq -> BigInt,
        hash -> Binary,
        created -> Timestamp,
        kind -> Text,
        signature -> Nullable<Binary>,
    }
}

diesel::table! {
    idempotency_keys (key) {
        key -> Text,
        fingerprint -> Binary,
        status -> Integer,
        record_id -> Nullable<BigInt>,
        version -> Nullable<Integer>,
        original -> Nullable<Text>,
        jumbled -> Nullable<Text>,
        record_created -> Nullable<Timestamp>,
        record_updated -> Nullable<Timestamp>,
        created -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(randomizes, histories, randomizes_count);
