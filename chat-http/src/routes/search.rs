//! Message search across my rooms.

use axum::extract::State;
use chat_core::MessageId;

use crate::AppState;
use crate::auth::Actor;
use crate::dto::{ListPage, SearchHitOut, SearchQueryIn, cursor, room_id};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::Query;

/// Messages of my rooms that match words, newest first: each word begins a word of the
/// message, case and accents aside; Chinese and Japanese match without spaces.
#[utoipa::path(get, path = "/search", tag = "search", params(SearchQueryIn),
    responses((status = 200, body = ListPage<SearchHitOut>), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn search(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<SearchQueryIn>,
) -> ApiResult<axum::Json<ListPage<SearchHitOut>>> {
    let before: Option<MessageId> = cursor(query.cursor.as_deref())?;
    let text = query.q.unwrap_or_default();
    let found = state
        .chat
        .search(
            actor.user_id,
            &text,
            query.room_id.map(room_id),
            before,
            query.limit,
        )
        .await?;
    Ok(axum::Json(ListPage::of(found)))
}
