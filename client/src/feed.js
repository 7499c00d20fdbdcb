// A live feed of posts' counts (PROTOCOL §6.2): one batch read for the numbers now, then
// `watch_posts` on the personal channel for every change (at most one update a second per post).
// The channel sends the watch again after every reconnect and the server answers it with the
// current counts, so a feed never stays stale across a lost connection.
import { Emitter } from "./emitter.js";

/** What the server accepts as a post id (the document id `post:{id}`, §3). */
const POST_ID = /^[A-Za-z0-9_.:@-]{1,251}$/;
const bare = (id) => (String(id).startsWith("post:") ? String(id).slice(5) : String(id));

/** The distinct bare ids, or a RangeError / TypeError saying what is wrong (nothing sent yet). */
function checked(postIds) {
  if (!Array.isArray(postIds)) throw new TypeError("feed(postIds): postIds must be an array of post ids");
  const ids = [...new Set(postIds.map(bare))];
  if (ids.length > 100) throw new RangeError(`a feed watches at most 100 posts (got ${ids.length})`);
  const bad = ids.find((id) => !POST_ID.test(id));
  if (bad !== undefined) throw new TypeError(`post id ${JSON.stringify(bad)} must match ${POST_ID}`);
  return ids;
}

export class Feed extends Emitter {
  constructor(client, postIds) {
    super();
    checked(postIds); // before the channel opens: a refused feed leaves nothing behind
    this.client = client;
    /** post id → counts ({like_count, comment_count, repost_count, save_count, version, …}) */
    this.counts = new Map();
    this.postIds = [];
    this.closed = false;
    this.channel = client.channel();
    this.offUpdate = this.channel.on("engagement_update", (p) => this.#take(p));
    // The server refused the watch (e.g. `too_large`: over 200 posts across the user's sockets).
    this.offError = this.channel.on("watch_error", (e) => !this.closed && this.emit("error", e));
    this.setPosts(postIds);
  }

  /** Replaces the posts (≤ 100): their counts are read at once and watched from then on. */
  setPosts(postIds) {
    const ids = checked(postIds);
    this.postIds = ids;
    for (const id of [...this.counts.keys()]) if (!ids.includes(id)) this.counts.delete(id);
    this.channel._watchPosts(this, ids);
    this.ready = ids.length ? this.#read(ids) : Promise.resolve();
    return this.ready;
  }

  async #read(ids) {
    try {
      const found = await this.client.feedCounts(ids);
      for (const [id, c] of Object.entries(found)) if (c) this.#take({ post_id: id, ...c });
    } catch (e) {
      this.emit("error", e); // the watch's answer brings the counts anyway
    }
  }

  /** Counts newer than what the feed holds replace them (a late batch read never steps back). */
  #take(p) {
    if (this.closed || !this.postIds.includes(p.post_id)) return;
    const known = this.counts.get(p.post_id);
    if (known && Number(known.version) > Number(p.version)) return;
    this.counts.set(p.post_id, p);
    this.emit("change", p);
  }

  get(postId) {
    return this.counts.get(bare(postId));
  }

  close() {
    this.closed = true;
    this.offUpdate();
    this.offError();
    this.channel._watchPosts(this, []);
  }
}
