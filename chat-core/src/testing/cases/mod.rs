//! The conformance cases, one public async function per behaviour, grouped by area.

/// Asserts that a result is an error matching the pattern.
macro_rules! assert_err {
    ($result:expr, $pattern:pat $(,)?) => {
        match $result {
            Err($pattern) => {}
            other => panic!("expected Err({}), got {:?}", stringify!($pattern), other),
        }
    };
}

mod auth;
mod check;
mod direct;
mod engines;
mod events;
mod export;
mod import;
mod messages;
mod races;
mod reads;
mod rooms;
mod search;
mod store;
mod users;

pub use self::auth::*;
pub use self::check::*;
pub use self::direct::*;
pub use self::engines::*;
pub use self::events::*;
pub use self::export::*;
pub use self::import::*;
pub use self::messages::*;
pub use self::races::*;
pub use self::reads::*;
pub use self::rooms::*;
pub use self::search::*;
pub use self::store::*;
pub use self::users::*;
