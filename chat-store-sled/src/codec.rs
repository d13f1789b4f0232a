//! Keys, values and errors.

use chat_core::StoreError;
use sled::IVec;
use sled::transaction::TransactionError;
use uuid::Uuid;

use crate::records::Record;
use crate::tx::{Kind, Trees, Tx};

pub(crate) type StoreResult<T> = Result<T, StoreError>;

pub(crate) fn backend(error: impl Into<chat_core::BoxError>) -> StoreError {
    StoreError::Backend(error.into())
}

/// A transaction's outcome as a store result.
pub(crate) fn settled<T>(result: Result<T, TransactionError<StoreError>>) -> StoreResult<T> {
    result.map_err(|error| match error {
        TransactionError::Abort(error) => error,
        TransactionError::Storage(error) => backend(error),
    })
}

/// A value as its on-disk [`Record`].
pub(crate) fn encode<T: Record>(value: &T) -> StoreResult<Vec<u8>> {
    serde_json::to_vec(&value.to_record()).map_err(backend)
}

pub(crate) fn decode<T: Record>(bytes: &[u8]) -> StoreResult<T> {
    let record = serde_json::from_slice(bytes)
        .map_err(|e| backend(format!("unreadable stored value: {e}")))?;
    T::from_record(record)
}

pub(crate) fn decode_opt<T: Record>(bytes: Option<IVec>) -> StoreResult<Option<T>> {
    bytes.map(|b| decode(&b)).transpose()
}

/// `a ‖ b`.
pub(crate) fn pair(a: Uuid, b: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(16 + b.len());
    key.extend_from_slice(a.as_bytes());
    key.extend_from_slice(b);
    key
}

/// `id ‖ n` with `n` big-endian, so keys sort by `n` within `id`.
pub(crate) fn counter_key(id: Uuid, n: u64) -> [u8; 24] {
    let mut key = [0u8; 24];
    key[..16].copy_from_slice(id.as_bytes());
    key[16..].copy_from_slice(&n.to_be_bytes());
    key
}

pub(crate) fn uuid(bytes: &[u8]) -> StoreResult<Uuid> {
    Uuid::from_slice(bytes).map_err(|e| backend(format!("unreadable stored id: {e}")))
}

/// The counter at the end of a `counter_key`-shaped key (or an 8-byte value).
pub(crate) fn counter(bytes: &[u8]) -> StoreResult<u64> {
    let tail: [u8; 8] = bytes
        .get(bytes.len().saturating_sub(8)..)
        .and_then(|tail| tail.try_into().ok())
        .ok_or_else(|| backend("unreadable stored counter"))?;
    Ok(u64::from_be_bytes(tail))
}

/// The id after the first 16 bytes of a `pair` key.
pub(crate) fn second(key: &[u8]) -> StoreResult<Uuid> {
    uuid(key.get(16..32).ok_or_else(|| backend("short key"))?)
}

/// A record inside a write.
pub(crate) fn tx_read<T: Record>(
    tx: &Tx<'_>,
    kind: Kind,
    key: impl AsRef<[u8]>,
) -> StoreResult<Option<T>> {
    decode_opt(tx.get(kind, key)?)
}

/// Writes a record inside a write.
pub(crate) fn tx_write<T: Record>(
    tx: &Tx<'_>,
    kind: Kind,
    key: impl AsRef<[u8]>,
    value: &T,
) -> StoreResult<()> {
    tx.insert(kind, key, encode(value)?)
}

/// A committed record.
pub(crate) fn read<T: Record>(
    trees: &Trees,
    kind: Kind,
    key: impl AsRef<[u8]>,
) -> StoreResult<Option<T>> {
    decode_opt(trees.get(kind, key)?)
}
