//! Write shapes: one struct per table, declared once with [`write_shape!`], from which
//! every batch statement takes its column list and its parameters.
//!
//! A new column is then a migration, one line in its table's shape, and the code that
//! sets it; the batch INSERTs of both backends follow by themselves.

use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::AstPass;
use diesel::sql_types::{BigInt, Binary, Double, Integer, Nullable, Text, Timestamp};
use diesel::sqlite::Sqlite;

/// What a batch statement needs of one table's write shape.
pub(crate) trait WriteShape {
    /// The table and its written columns: `histories (request_id, method, …)`.
    fn target() -> &'static str;
    /// The written columns, in order.
    const COLUMNS: &'static [&'static str];
    /// How many columns one row binds.
    const WIDTH: usize;
    /// This row's values as parameters (`?, ?, …`), in column order.
    fn walk_sqlite<'b>(&'b self, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()>;
}

/// Rows as one PostgreSQL array per column, for `UNNEST`: the statement's text is then
/// the same for every batch size, so each connection prepares it once.
pub(crate) trait Unnest {
    /// `$1::text[], $2::int4[], …`: one array parameter per column.
    fn walk_arrays<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()>;
}

/// The cast that fixes an array parameter's type in the statement's text.
pub(crate) trait PgArrayCast {
    const CAST: &'static str;
}

macro_rules! array_casts {
    ($($sql:ty => $cast:literal),* $(,)?) => {
        $(impl PgArrayCast for $sql { const CAST: &'static str = $cast; })*
    };
}

array_casts! {
    Text => "::text[]",
    Integer => "::int4[]",
    BigInt => "::int8[]",
    Double => "::float8[]",
    Timestamp => "::timestamp[]",
    Binary => "::bytea[]",
}

impl<T: PgArrayCast> PgArrayCast for Nullable<T> {
    const CAST: &'static str = T::CAST;
}

/// Declares a table's write shape: the struct, its [`WriteShape`] and a borrowed
/// column-per-array view implementing [`Unnest`]. Fields are listed in the table's
/// column order, each with its Rust type and its diesel SQL type.
macro_rules! write_shape {
    (
        $(#[$meta:meta])*
        pub struct $name:ident into $table:literal, unnested as $columns:ident {
            $( $(#[$field_meta:meta])* $field:ident: $ty:ty => $sql:ty ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $( $(#[$field_meta])* pub $field: $ty, )+
        }

        impl $crate::db::shape::WriteShape for $name {
            fn target() -> &'static str {
                static TARGET: ::std::sync::OnceLock<String> = ::std::sync::OnceLock::new();
                TARGET.get_or_init(|| format!("{} ({})", $table, Self::COLUMNS.join(", ")))
            }

            const COLUMNS: &'static [&'static str] = &[$(stringify!($field)),+];

            const WIDTH: usize = Self::COLUMNS.len();

            fn walk_sqlite<'b>(
                &'b self,
                out: &mut ::diesel::query_builder::AstPass<'_, 'b, ::diesel::sqlite::Sqlite>,
            ) -> ::diesel::QueryResult<()> {
                let mut separator = "";
                $(
                    out.push_sql(separator);
                    out.push_bind_param::<$sql, _>(&self.$field)?;
                    separator = ", ";
                )+
                let _ = separator;
                Ok(())
            }
        }

        /// The rows of a batch, one array per column.
        pub(crate) struct $columns<'a> {
            $( $field: Vec<&'a $ty>, )+
        }

        impl<'a> $columns<'a> {
            pub(crate) fn new(rows: &[&'a $name]) -> Self {
                Self { $( $field: rows.iter().map(|row| &row.$field).collect(), )+ }
            }
        }

        impl $crate::db::shape::Unnest for $columns<'_> {
            fn walk_arrays<'b>(
                &'b self,
                out: &mut ::diesel::query_builder::AstPass<'_, 'b, ::diesel::pg::Pg>,
            ) -> ::diesel::QueryResult<()> {
                let mut separator = "";
                $(
                    out.push_sql(separator);
                    out.push_bind_param::<::diesel::sql_types::Array<$sql>, _>(&self.$field)?;
                    out.push_sql(<$sql as $crate::db::shape::PgArrayCast>::CAST);
                    separator = ", ";
                )+
                let _ = separator;
                Ok(())
            }
        }
    };
}

pub(crate) use write_shape;
