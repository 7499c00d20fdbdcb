//! A canvas room's reads of stroke data (§8): the room keeps only the index, so whatever carries
//! strokes (`initial_state`, `strokes_in_view`, the REST state) is written page by page from
//! storage straight into frames the host sends one at a time. The host runs these in the same
//! event as the effects that asked for them (no await in between), so no operation lands
//! between the pages and the version they carry.

use serde_json::json;

use super::CanvasRoom;
use crate::doc::canvas::{page_bytes, pages, write_strokes};
use crate::geom::Rect;
use crate::limits;
use crate::model::{Lookup, Session, StrokeStream};
use crate::protocol::{Code, Failure, Outgoing};

impl CanvasRoom {
    /// Strokes in the canvas.
    pub fn strokes_total(&self) -> usize {
        self.doc.canvas().len()
    }

    /// Runs a `FollowUps::stream` for `me`, whose viewport until now is `view` (None: everything):
    /// every frame goes to `out` in order. On `Err` (storage failed) some frames may have gone:
    /// the host sends the error and closes the socket (1011), so the client reconnects and
    /// catches up again.
    pub fn stream(&self, me: &Session, view: Option<&Rect>, plan: &StrokeStream, present: &[Session], lookup: &dyn Lookup, out: &mut dyn FnMut(Outgoing)) -> Result<(), Failure> {
        match plan {
            StrokeStream::CatchUp { reply_to } => self.stream_catch_up(me, view, present, reply_to.clone(), lookup, out),
            StrokeStream::Viewport { to, reply_to } => self.stream_entering(view, to.as_ref(), reply_to.clone(), lookup, out),
        }
    }

    /// `initial_state` with the strokes in `view` (and those without a box) plus `strokes_total`;
    /// the strokes beyond its first page follow as `strokes_in_view`; then `sync_status`.
    pub fn stream_catch_up(&self, me: &Session, view: Option<&Rect>, present: &[Session], reply_to: Option<String>, lookup: &dyn Lookup, out: &mut dyn FnMut(Outgoing)) -> Result<(), Failure> {
        let strokes = self.doc.canvas().index().in_view(view);
        let pages = pages(&strokes, limits::STROKE_PAGE_BYTES);
        let mut head = self.initial_state(me, present);
        head.without_state = true;
        let head = serde_json::to_string(&head).map_err(|e| Failure::new(Code::Internal, e.to_string()))?;
        let head = head.strip_suffix('}').unwrap_or(&head);
        let first: &[(&str, u32)] = pages.first().copied().unwrap_or(&[]);
        let (msg, written) = Outgoing::with_payload("initial_state", reply_to.clone(), head.len() + 40 + page_bytes(first), |buf| {
            buf.push_str(head);
            buf.push_str(&format!(",\"strokes_total\":{},\"strokes\":", self.strokes_total()));
            let written = write_strokes(buf, first, lookup);
            buf.push('}');
            written
        });
        written?;
        out(msg);
        for page in pages.iter().skip(1) {
            out(self.strokes_in_view(page, reply_to.clone(), lookup)?);
        }
        out(self.sync_status(reply_to));
        Ok(())
    }

    /// The strokes in `to` that were not in `from` (None: everything), as `strokes_in_view`
    /// frames; none when nothing entered.
    pub fn stream_entering(&self, from: Option<&Rect>, to: Option<&Rect>, reply_to: Option<String>, lookup: &dyn Lookup, out: &mut dyn FnMut(Outgoing)) -> Result<(), Failure> {
        let strokes = self.doc.canvas().index().entering(from, to);
        for page in pages(&strokes, limits::STROKE_PAGE_BYTES) {
            out(self.strokes_in_view(page, reply_to.clone(), lookup)?);
        }
        Ok(())
    }

    /// `strokes_in_view` `{"version","strokes":{…}}` of one page.
    fn strokes_in_view(&self, page: &[(&str, u32)], reply_to: Option<String>, lookup: &dyn Lookup) -> Result<Outgoing, Failure> {
        let head = json!({"version": self.version}).to_string();
        let head = head.strip_suffix('}').unwrap_or(&head);
        let (msg, written) = Outgoing::with_payload("strokes_in_view", reply_to, head.len() + 16 + page_bytes(page), |buf| {
            buf.push_str(head);
            buf.push_str(",\"strokes\":");
            let written = write_strokes(buf, page, lookup);
            buf.push('}');
            written
        });
        written.map(|()| msg)
    }

    /// The state field's JSON (`{stroke_id: data, …}`) for `GET /documents/{id}`, in chunks of
    /// about a page each, so a 64 MiB canvas never sits whole in the room's memory.
    pub fn write_state(&self, view: Option<&Rect>, lookup: &dyn Lookup, out: &mut dyn FnMut(&str)) -> Result<(), Failure> {
        let strokes = self.doc.canvas().index().in_view(view);
        let pages = pages(&strokes, limits::STROKE_PAGE_BYTES);
        if pages.is_empty() {
            out("{}");
        }
        for (i, page) in pages.iter().enumerate() {
            let mut buf = String::with_capacity(page_bytes(page));
            write_strokes(&mut buf, page, lookup)?;
            // Pages are objects; the chunks together make one: drop the inner braces.
            let inner = &buf[1..buf.len() - 1];
            out(if i == 0 { "{" } else { "," });
            out(inner);
            if i + 1 == pages.len() {
                out("}");
            }
        }
        Ok(())
    }
}
