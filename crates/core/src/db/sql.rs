//! One way to run a statement on either engine. A domain's storage file writes its SQL once, in
//! SQLite's dialect with `?` placeholders (or `?N`), binds plain values (integers, floats, flags,
//! text, bytes, JSON) and reads rows into the same types; a statement sent to PostgreSQL is
//! translated by [`numbered`] (placeholders `$N`, and the few SQLite functions the storage files
//! use). What cannot be said in one text is chosen by [`DbConn::engine`] where it is written.
//!
//! Values are bound owned and each statement runs on the engine's own driver, so SQLite pays
//! nothing for PostgreSQL being possible (no `Any` conversion of rows).

use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use serde_json::{Map, Value};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{
    Arguments, Column, Decode, Encode, FromRow, PgConnection, Postgres, Row, Sqlite,
    SqliteConnection, Type, TypeInfo, ValueRef,
};

use super::Result;

/// Which engine a connection talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A connection of either engine: pooled, inside a transaction, or owned outright. Storage
/// functions take `&mut DbConn`; a transaction is one too, committed with [`DbConn::commit`].
pub struct DbConn(Inner);

enum Inner {
    LitePooled(PoolConnection<Sqlite>),
    LiteTx(sqlx::Transaction<'static, Sqlite>),
    LiteOwned(SqliteConnection),
    PgPooled(PoolConnection<Postgres>),
    PgTx(sqlx::Transaction<'static, Postgres>),
    PgOwned(PgConnection),
}

enum Raw<'a> {
    Lite(&'a mut SqliteConnection),
    Pg(&'a mut PgConnection),
}

impl DbConn {
    pub(super) fn lite_pooled(c: PoolConnection<Sqlite>) -> Self {
        Self(Inner::LitePooled(c))
    }
    pub(super) fn lite_tx(t: sqlx::Transaction<'static, Sqlite>) -> Self {
        Self(Inner::LiteTx(t))
    }
    pub(super) fn lite_owned(c: SqliteConnection) -> Self {
        Self(Inner::LiteOwned(c))
    }
    pub(super) fn pg_pooled(c: PoolConnection<Postgres>) -> Self {
        Self(Inner::PgPooled(c))
    }
    pub(super) fn pg_tx(t: sqlx::Transaction<'static, Postgres>) -> Self {
        Self(Inner::PgTx(t))
    }
    pub(super) fn pg_owned(c: PgConnection) -> Self {
        Self(Inner::PgOwned(c))
    }

    pub fn engine(&self) -> Engine {
        match self.0 {
            Inner::LitePooled(_) | Inner::LiteTx(_) | Inner::LiteOwned(_) => Engine::Sqlite,
            Inner::PgPooled(_) | Inner::PgTx(_) | Inner::PgOwned(_) => Engine::Postgres,
        }
    }

    fn raw(&mut self) -> Raw<'_> {
        match &mut self.0 {
            Inner::LitePooled(c) => Raw::Lite(c),
            Inner::LiteTx(t) => Raw::Lite(t),
            Inner::LiteOwned(c) => Raw::Lite(c),
            Inner::PgPooled(c) => Raw::Pg(c),
            Inner::PgTx(t) => Raw::Pg(t),
            Inner::PgOwned(c) => Raw::Pg(c),
        }
    }

    /// Commits a transaction (a connection outside one has nothing to commit).
    pub async fn commit(self) -> Result<()> {
        match self.0 {
            Inner::LiteTx(t) => t.commit().await?,
            Inner::PgTx(t) => t.commit().await?,
            _ => {}
        }
        Ok(())
    }

    /// Closes a connection of its own (a pooled one goes back to its pool when dropped).
    pub async fn close(self) -> Result<()> {
        use sqlx::Connection;
        match self.0 {
            Inner::LiteOwned(c) => c.close().await?,
            Inner::PgOwned(c) => c.close().await?,
            _ => {}
        }
        Ok(())
    }

    /// Begins a transaction on a connection of its own holding the store's write lock, as
    /// [`super::Store::write`] does on a pooled one (ended with `COMMIT` or `ROLLBACK`).
    pub async fn begin_write(&mut self) -> Result<()> {
        match self.engine() {
            Engine::Sqlite => self.batch("BEGIN IMMEDIATE").await,
            Engine::Postgres => {
                self.batch(&format!("BEGIN; {}", super::PG_WRITE_LOCK))
                    .await
            }
        }
    }

    /// Runs statements as they are, with no arguments (several may be separated by `;`).
    pub async fn batch(&mut self, sql: &str) -> Result<()> {
        use sqlx::Executor;
        match self.raw() {
            Raw::Lite(c) => {
                c.execute(sql).await?;
            }
            Raw::Pg(c) => {
                c.execute(sql).await?;
            }
        }
        Ok(())
    }
}

/// A value to bind, owned, typed even when null (PostgreSQL wants the type of a NULL).
#[derive(Clone, Debug)]
pub enum Val {
    Bool(Option<bool>),
    Int(Option<i64>),
    Float(Option<f64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

/// What can be bound: plain Rust values, their options, and `Json` (bound as its text).
pub trait Bind {
    fn val(self) -> Val;
}

/// A bindable type's NULL.
pub trait Null {
    const NULL: Val;
}

macro_rules! bind_int {
    ($($t:ty),*) => {$(
        impl Bind for $t {
            fn val(self) -> Val {
                Val::Int(Some(self as i64))
            }
        }
        impl Null for $t {
            const NULL: Val = Val::Int(None);
        }
    )*};
}
bind_int!(i64, i32, i16, u32, u16, u8);

impl Bind for f64 {
    fn val(self) -> Val {
        Val::Float(Some(self))
    }
}
impl Null for f64 {
    const NULL: Val = Val::Float(None);
}
impl Bind for bool {
    fn val(self) -> Val {
        Val::Bool(Some(self))
    }
}
impl Null for bool {
    const NULL: Val = Val::Bool(None);
}
impl Bind for String {
    fn val(self) -> Val {
        Val::Text(Some(self))
    }
}
impl Null for String {
    const NULL: Val = Val::Text(None);
}
impl Bind for &String {
    fn val(self) -> Val {
        Val::Text(Some(self.clone()))
    }
}
impl Null for &String {
    const NULL: Val = Val::Text(None);
}
impl Bind for &str {
    fn val(self) -> Val {
        Val::Text(Some(self.to_owned()))
    }
}
impl Null for &str {
    const NULL: Val = Val::Text(None);
}
impl Bind for Vec<u8> {
    fn val(self) -> Val {
        Val::Bytes(Some(self))
    }
}
impl Null for Vec<u8> {
    const NULL: Val = Val::Bytes(None);
}
impl Bind for &[u8] {
    fn val(self) -> Val {
        Val::Bytes(Some(self.to_vec()))
    }
}
impl Bind for &Vec<u8> {
    fn val(self) -> Val {
        Val::Bytes(Some(self.clone()))
    }
}
impl<T: Bind + Null> Bind for Option<T> {
    fn val(self) -> Val {
        match self {
            Some(v) => v.val(),
            None => T::NULL,
        }
    }
}
impl<T: serde::Serialize> Bind for Json<T> {
    fn val(self) -> Val {
        Val::Text(Some(
            serde_json::to_string(&self.0).expect("a value of ours serializes"),
        ))
    }
}
macro_rules! bind_ref {
    ($($t:ty),*) => {$(
        impl Bind for &$t {
            fn val(self) -> Val {
                (*self).val()
            }
        }
    )*};
}
bind_ref!(
    i64,
    i32,
    u32,
    f64,
    bool,
    Option<i64>,
    Option<f64>,
    Option<bool>
);

impl Bind for &Option<String> {
    fn val(self) -> Val {
        Val::Text(self.clone())
    }
}
impl<T> Null for Json<T> {
    const NULL: Val = Val::Text(None);
}
impl Bind for Val {
    fn val(self) -> Val {
        self
    }
}

/// A value kept as JSON text (SQLite TEXT, PostgreSQL TEXT): bound as the text serde writes,
/// read back by parsing it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T> Type<Sqlite> for Json<T> {
    fn type_info() -> <Sqlite as sqlx::Database>::TypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &<Sqlite as sqlx::Database>::TypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl<T> Type<Postgres> for Json<T> {
    fn type_info() -> <Postgres as sqlx::Database>::TypeInfo {
        <String as Type<Postgres>>::type_info()
    }
    fn compatible(ty: &<Postgres as sqlx::Database>::TypeInfo) -> bool {
        <String as Type<Postgres>>::compatible(ty)
    }
}

impl<'r, T: serde::de::DeserializeOwned> Decode<'r, Sqlite> for Json<T> {
    fn decode(value: sqlx::sqlite::SqliteValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <&str as Decode<Sqlite>>::decode(value)?;
        Ok(Json(serde_json::from_str(text)?))
    }
}

impl<'r, T: serde::de::DeserializeOwned> Decode<'r, Postgres> for Json<T> {
    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <&str as Decode<Postgres>>::decode(value)?;
        Ok(Json(serde_json::from_str(text)?))
    }
}

/// A statement's arguments, added in placeholder order.
#[derive(Clone, Debug, Default)]
pub struct Args(Vec<Val>);

impl Args {
    pub fn add(&mut self, v: impl Bind) {
        self.0.push(v.val());
    }

    fn lite(self) -> SqliteArguments<'static> {
        self.into_args()
    }

    fn pg(self) -> PgArguments {
        self.into_args()
    }

    /// The values as one engine's arguments (every engine encodes these five types).
    fn into_args<'q, A>(self) -> A
    where
        A: Arguments<'q>,
        Option<bool>: Encode<'q, A::Database> + Type<A::Database>,
        Option<i64>: Encode<'q, A::Database> + Type<A::Database>,
        Option<f64>: Encode<'q, A::Database> + Type<A::Database>,
        Option<String>: Encode<'q, A::Database> + Type<A::Database>,
        Option<Vec<u8>>: Encode<'q, A::Database> + Type<A::Database>,
    {
        let mut a = A::default();
        for v in self.0 {
            let r = match v {
                Val::Bool(b) => a.add(b),
                Val::Int(i) => a.add(i),
                Val::Float(f) => a.add(f),
                Val::Text(t) => a.add(t),
                Val::Bytes(b) => a.add(b),
            };
            r.expect("a plain value encodes");
        }
        a
    }
}

/// A statement in SQLite's dialect as PostgreSQL reads it: `?` and `?N` placeholders numbered
/// `$N`, and the few SQLite functions the storage files use spelled as PostgreSQL spells them:
///
/// | SQLite                             | PostgreSQL                                         |
/// |------------------------------------|----------------------------------------------------|
/// | `json_extract(x, '$.a.b')`         | `((x)::jsonb #>> '{a,b}')` (any path expression: split at dots) |
/// | `json_extract(x, '$[0]')`          | `((x)::jsonb ->> 0)`                               |
/// | `SELECT value FROM json_each(?)`   | the ids of a JSON array, as bigints                |
/// | `max(a, b)`, `min(a, b)` (scalar)  | `GREATEST(a, b)`, `LEAST(a, b)`                    |
/// | `group_concat(x[, sep])`           | `string_agg((x)::text, sep)`                       |
///
/// Text in quotes is left as it is. What cannot be said this way is chosen by
/// [`DbConn::engine`] where it is written.
pub fn numbered(sql: &str) -> String {
    let sql = sql.replace(
        "SELECT value FROM json_each(?)",
        "SELECT j.value::bigint FROM jsonb_array_elements_text(CAST(? AS jsonb)) AS j(value)",
    );
    let mut n = 0;
    translate(&sql, &mut n)
}

fn translate(sql: &str, n: &mut u32) -> String {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 16);
    let mut i = 0;
    while i < b.len() {
        let ch = b[i];
        if ch == b'\'' || ch == b'"' {
            let end = sql[i + 1..]
                .find(ch as char)
                .map_or(b.len(), |e| i + 1 + e + 1);
            out.push_str(&sql[i..end]);
            i = end;
        } else if ch == b'?' {
            out.push('$');
            i += 1;
            let digits = sql[i..].bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 {
                out.push_str(&sql[i..i + digits]);
                i += digits;
            } else {
                *n += 1;
                out.push_str(&n.to_string());
            }
        } else if ch.is_ascii_alphabetic() || ch == b'_' {
            let len = sql[i..]
                .bytes()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
                .count();
            let word = &sql[i..i + len];
            let call = b.get(i + len) == Some(&b'(') && (i == 0 || b[i - 1] != b'.');
            match (call, word.to_ascii_lowercase().as_str()) {
                (true, f @ ("json_extract" | "max" | "min" | "group_concat")) => {
                    let (args, end) = arguments(sql, i + len);
                    let args: Vec<String> = args.iter().map(|a| translate(a, n)).collect();
                    out.push_str(&function(f, word, &args));
                    i = end;
                }
                _ => {
                    out.push_str(word);
                    i += len;
                }
            }
        } else {
            let len = sql[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&sql[i..i + len]);
            i += len;
        }
    }
    out
}

/// The arguments of the call whose `(` is at `open`, split at top-level commas, and the index
/// just past its `)`.
fn arguments(sql: &str, open: usize) -> (Vec<&str>, usize) {
    let b = sql.as_bytes();
    let (mut depth, mut start, mut args) = (0, open + 1, Vec::new());
    let mut i = open;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"') => {
                i = sql[i + 1..].find(q as char).map_or(b.len(), |e| i + 1 + e);
            }
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    args.push(sql[start..i].trim());
                    return (args, i + 1);
                }
            }
            b',' if depth == 1 => {
                args.push(sql[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    (args, b.len())
}

fn function(f: &str, word: &str, args: &[String]) -> String {
    match (f, args) {
        ("json_extract", [x, path]) => {
            let literal = path
                .strip_prefix("'$")
                .and_then(|p| p.strip_suffix('\''))
                .filter(|p| !p.contains('\''));
            match literal {
                Some(p) if p.starts_with('[') => {
                    format!("(({x})::jsonb ->> {})", p.trim_matches(['[', ']']))
                }
                Some(p) => format!(
                    "(({x})::jsonb #>> '{{{}}}')",
                    p.trim_start_matches('.').replace('.', ",")
                ),
                None => format!("(({x})::jsonb #>> string_to_array(substr({path}, 3), '.'))"),
            }
        }
        ("max", [_, _, ..]) => format!("GREATEST({})", args.join(", ")),
        ("min", [_, _, ..]) => format!("LEAST({})", args.join(", ")),
        ("group_concat", [x]) => format!("string_agg(({x})::text, ',')"),
        ("group_concat", [x, sep]) => format!("string_agg(({x})::text, {sep})"),
        _ => format!("{word}({})", args.join(", ")),
    }
}

/// What a statement that returns no rows did.
#[derive(Debug)]
pub struct Done {
    rows: u64,
}

impl Done {
    pub fn rows_affected(&self) -> u64 {
        self.rows
    }
}

/// A row type readable from both engines (what `#[derive(FromRow)]` and tuples give).
pub trait Record:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin + 'static
{
}
impl<T> Record for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin + 'static
{
}

/// A single value readable from both engines.
pub trait Scalar:
    for<'r> Decode<'r, Sqlite>
    + Type<Sqlite>
    + for<'r> Decode<'r, Postgres>
    + Type<Postgres>
    + Send
    + Unpin
    + 'static
{
}
impl<T> Scalar for T where
    T: for<'r> Decode<'r, Sqlite>
        + Type<Sqlite>
        + for<'r> Decode<'r, Postgres>
        + Type<Postgres>
        + Send
        + Unpin
        + 'static
{
}

/// A statement and its arguments.
#[must_use]
pub struct Query<'q> {
    sql: &'q str,
    args: Args,
}

pub fn query(sql: &str) -> Query<'_> {
    query_with(sql, Args::default())
}

pub fn query_with(sql: &str, args: Args) -> Query<'_> {
    Query { sql, args }
}

/// A statement whose rows are read as `T`.
#[must_use]
pub struct QueryAs<'q, T> {
    q: Query<'q>,
    _t: std::marker::PhantomData<fn() -> T>,
}

pub fn query_as<T: Record>(sql: &str) -> QueryAs<'_, T> {
    query_as_with(sql, Args::default())
}

pub fn query_as_with<T: Record>(sql: &str, args: Args) -> QueryAs<'_, T> {
    QueryAs {
        q: query_with(sql, args),
        _t: std::marker::PhantomData,
    }
}

/// A statement whose rows are read as their first column, `T`.
#[must_use]
pub struct QueryScalar<'q, T> {
    q: Query<'q>,
    _t: std::marker::PhantomData<fn() -> T>,
}

pub fn query_scalar<T: Scalar>(sql: &str) -> QueryScalar<'_, T> {
    query_scalar_with(sql, Args::default())
}

pub fn query_scalar_with<T: Scalar>(sql: &str, args: Args) -> QueryScalar<'_, T> {
    QueryScalar {
        q: query_with(sql, args),
        _t: std::marker::PhantomData,
    }
}

/// Runs a built statement (`sqlx::$with`) on whichever engine `c` is, with that engine's own
/// driver (`=> $then`: a method both engines' answers have, to make them one).
macro_rules! on_engine {
    ($q:expr, $c:expr, $with:ident, $how:ident) => {
        match $c.raw() {
            Raw::Lite(c) => sqlx::$with($q.sql, $q.args.lite()).$how(c).await?,
            Raw::Pg(c) => sqlx::$with(&numbered($q.sql), $q.args.pg()).$how(c).await?,
        }
    };
    ($q:expr, $c:expr, $with:ident, $how:ident => $then:ident) => {
        match $c.raw() {
            Raw::Lite(c) => sqlx::$with($q.sql, $q.args.lite()).$how(c).await?.$then(),
            Raw::Pg(c) => sqlx::$with(&numbered($q.sql), $q.args.pg())
                .$how(c)
                .await?
                .$then(),
        }
    };
}

impl<'q> Query<'q> {
    pub fn bind(mut self, v: impl Bind) -> Self {
        self.args.add(v);
        self
    }

    pub async fn execute(self, c: &mut DbConn) -> Result<Done> {
        let rows = on_engine!(self, c, query_with, execute => rows_affected);
        Ok(Done { rows })
    }

    /// Runs an INSERT and gives the id of the row it added (`None`: it added none, as
    /// `ON CONFLICT … DO NOTHING` may).
    pub async fn returning_id(self, c: &mut DbConn) -> Result<Option<i64>> {
        let sql = format!("{} RETURNING id", self.sql);
        query_scalar_with(&sql, self.args).fetch_optional(c).await
    }

    /// Runs a multi-row INSERT and gives the ids of the rows it added in the order of its
    /// VALUES (each engine numbers one statement's rows in that order, ascending).
    pub async fn returning_ids(self, c: &mut DbConn) -> Result<Vec<i64>> {
        let sql = format!("{} RETURNING id", self.sql);
        let mut ids: Vec<i64> = query_scalar_with(&sql, self.args).fetch_all(c).await?;
        ids.sort_unstable();
        Ok(ids)
    }

    /// The rows one at a time as JSON objects, column by column as stored (a `*_json` column
    /// as the JSON it holds, bytes as hex), without holding them all.
    pub fn fetch_json<'c>(self, c: &'c mut DbConn) -> BoxStream<'c, Result<Map<String, Value>>>
    where
        'q: 'c,
    {
        match c.raw() {
            Raw::Lite(c) => sqlx::query_with(self.sql, self.args.lite())
                .fetch(c)
                .map(|r| lite_json(&r?))
                .boxed(),
            Raw::Pg(c) => sqlx::query_with(interned(self.sql), self.args.pg())
                .fetch(c)
                .map(|r| pg_json(&r?))
                .boxed(),
        }
    }
}

fn json_cell(name: &str, s: String) -> Value {
    match name.ends_with("_json") {
        true => serde_json::from_str(&s).unwrap_or(Value::String(s)),
        false => Value::String(s),
    }
}

fn lite_json(row: &SqliteRow) -> Result<Map<String, Value>> {
    let mut obj = Map::new();
    for (i, col) in row.columns().iter().enumerate() {
        let raw = row.try_get_raw(i)?;
        let v = if raw.is_null() {
            Value::Null
        } else {
            match raw.type_info().name() {
                "INTEGER" => Value::from(row.try_get_unchecked::<i64, _>(i)?),
                "REAL" => serde_json::Number::from_f64(row.try_get_unchecked::<f64, _>(i)?)
                    .map_or(Value::Null, Value::Number),
                "BLOB" => Value::String(super::hex(&row.try_get_unchecked::<Vec<u8>, _>(i)?)),
                _ => json_cell(col.name(), row.try_get_unchecked(i)?),
            }
        };
        obj.insert(col.name().to_owned(), v);
    }
    Ok(obj)
}

fn pg_json(row: &PgRow) -> Result<Map<String, Value>> {
    let mut obj = Map::new();
    for (i, col) in row.columns().iter().enumerate() {
        let raw = row.try_get_raw(i)?;
        let v = if raw.is_null() {
            Value::Null
        } else {
            match raw.type_info().name() {
                "INT8" => Value::from(row.try_get::<i64, _>(i)?),
                "INT4" => Value::from(row.try_get::<i32, _>(i)?),
                "INT2" => Value::from(row.try_get::<i16, _>(i)?),
                "BOOL" => Value::Bool(row.try_get::<bool, _>(i)?),
                "FLOAT8" => serde_json::Number::from_f64(row.try_get::<f64, _>(i)?)
                    .map_or(Value::Null, Value::Number),
                "FLOAT4" => serde_json::Number::from_f64(f64::from(row.try_get::<f32, _>(i)?))
                    .map_or(Value::Null, Value::Number),
                "BYTEA" => Value::String(super::hex(&row.try_get::<Vec<u8>, _>(i)?)),
                _ => json_cell(col.name(), row.try_get_unchecked(i)?),
            }
        };
        obj.insert(col.name().to_owned(), v);
    }
    Ok(obj)
}

macro_rules! fetchers {
    ($ty:ident, $bound:ident, $with:ident) => {
        impl<'q, T: $bound> $ty<'q, T> {
            pub fn bind(mut self, v: impl Bind) -> Self {
                self.q.args.add(v);
                self
            }

            pub async fn fetch_all(self, c: &mut DbConn) -> Result<Vec<T>> {
                Ok(on_engine!(self.q, c, $with, fetch_all))
            }

            pub async fn fetch_optional(self, c: &mut DbConn) -> Result<Option<T>> {
                Ok(on_engine!(self.q, c, $with, fetch_optional))
            }

            pub async fn fetch_one(self, c: &mut DbConn) -> Result<T> {
                Ok(on_engine!(self.q, c, $with, fetch_one))
            }

            /// The rows one at a time, without holding them all.
            pub fn fetch<'c>(self, c: &'c mut DbConn) -> BoxStream<'c, Result<T>>
            where
                'q: 'c,
            {
                match c.raw() {
                    Raw::Lite(c) => sqlx::$with(self.q.sql, self.q.args.lite())
                        .fetch(c)
                        .map_err(Into::into)
                        .boxed(),
                    Raw::Pg(c) => sqlx::$with(interned(self.q.sql), self.q.args.pg())
                        .fetch(c)
                        .map_err(Into::into)
                        .boxed(),
                }
            }
        }
    };
}

fetchers!(QueryAs, Record, query_as_with);
fetchers!(QueryScalar, Scalar, query_scalar_with);

/// A streamed statement's PostgreSQL text, numbered once per distinct statement and kept for
/// the process (the stream borrows it; the few streamed statements are a fixed set).
fn interned(sql: &str) -> &'static str {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static SEEN: OnceLock<Mutex<HashMap<String, &'static str>>> = OnceLock::new();
    let mut seen = SEEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(s) = seen.get(sql) {
        return s;
    }
    let s: &'static str = Box::leak(numbered(sql).into_boxed_str());
    seen.insert(sql.to_owned(), s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_functions_read_as_postgresql_spells_them() {
        assert_eq!(
            numbered("SELECT json_extract(x.r, '$.scores.' || ?), json_extract(r, '$.a.b') FROM t"),
            "SELECT ((x.r)::jsonb #>> string_to_array(substr('$.scores.' || $1, 3), '.')), \
             ((r)::jsonb #>> '{a,b}') FROM t"
        );
        assert_eq!(
            numbered("SELECT max(a, coalesce(b, 0)), max(c), min(d, ?) FROM t"),
            "SELECT GREATEST(a, coalesce(b, 0)), max(c), LEAST(d, $1) FROM t"
        );
        assert_eq!(
            numbered("SELECT group_concat(id || ',' || name, '|'), t.max(1, 2) FROM t"),
            "SELECT string_agg((id || ',' || name)::text, '|'), t.max(1, 2) FROM t"
        );
        assert_eq!(
            numbered("WHERE id IN (SELECT value FROM json_each(?)) AND json_extract(v, '$[1]') = ?"),
            "WHERE id IN (SELECT j.value::bigint FROM jsonb_array_elements_text(CAST($1 AS jsonb)) \
             AS j(value)) AND ((v)::jsonb ->> 1) = $2"
        );
    }

    #[test]
    fn placeholders_are_numbered_outside_quotes() {
        assert_eq!(
            numbered("SELECT '?' , ? FROM t WHERE a = ? AND b = \"x?\""),
            "SELECT '?' , $1 FROM t WHERE a = $2 AND b = \"x?\""
        );
        assert_eq!(
            numbered("VALUES (?1, ?2, ?1) -- ?12"),
            "VALUES ($1, $2, $1) -- $12"
        );
    }
}
