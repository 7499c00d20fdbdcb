// A live feed of posts' counts (PROTOCOL §6.2): one batch read for the numbers now, then
// `watch_posts` on the personal channel for every change (at most one update a second per post).
// The channel sends the watch again after every reconnect and the server answers it with the
// current counts, so a feed never stays stale across a lost connection.
import { Emitter } from "./emitter.js";

const bare = (id) => (String(id).startsWith("post:") ? String(id).slice(5) : String(id));

export class Feed extends Emitter {
  constructor(client, postIds) {
    super();
    this.client = client;
    /** post id → counts ({like_count, comment_count, repost_count, save_count, version, …}) */
    this.counts = new Map();
    this.postIds = [];
    this.closed = false;
    this.channel = client.channel();
    this.offUpdate = this.channel.on("engagement_update", (p) => this.#take(p));
    this.setPosts(postIds);
  }

  /** Replaces the posts (≤ 100): their counts are read at once and watched from then on. */
  setPosts(postIds) {
    const ids = [...new Set(postIds.map(bare))];
    if (ids.length > 100) throw new RangeError("a feed watches at most 100 posts");
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
    this.channel._watchPosts(this, []);
  }
}
