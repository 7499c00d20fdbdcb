//! The runtime shell: the Worker entry points and the Durable Objects.

pub mod document_room;
pub mod internal;

use worker::{event, Context, Env, Request, Response, Result};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    crate::routes::handle(req, env).await
}
