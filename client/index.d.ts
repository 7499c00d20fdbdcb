// Types of @sidechain/realtime. Wire shapes match docs/schemas/ws-messages.schema.json.

/** A text primitive of PROTOCOL §3.3 (positions and lengths count code points). */
export type TextPrimitive =
  | { type: "insert"; position: number; content: string }
  | { type: "delete"; position: number; length: number };

export type CanvasPrimitive =
  | { type: "stroke_create"; stroke_id: string; data: unknown }
  | { type: "stroke_update"; stroke_id: string; data: unknown }
  | { type: "stroke_delete"; stroke_id: string }
  | { type: "clear_all" };

export type EngagementAction = "like" | "unlike" | "repost" | "unrepost" | "save" | "unsave" | "comment" | "uncomment";

export type ModifyPrimitive = { type: "modify"; action: EngagementAction; emoji?: string; text?: string; comment_id?: string };

export type SyncStatus = "connecting" | "syncing" | "synced" | "offline";

export type ErrorCode =
  | "bad_request"
  | "unknown_type"
  | "invalid_operation"
  | "version_ahead"
  | "version_too_old"
  | "seq_gap"
  | "client_id_taken"
  | "forbidden"
  | "too_large"
  | "rate_limited"
  | "too_many_connections"
  | "internal";

/** An `error` payload from the server, or an SDK-side failure (unauthorized, deleted, …). */
export interface SidechainError {
  code: ErrorCode | "unauthorized" | "deleted" | "not_found" | "token_failed" | "connect_failed" | string;
  message?: string;
  operation_id?: string;
  retry_after_ms?: number;
  /** True when the connection stopped retrying (call client.goOnline() to try again). */
  fatal?: boolean;
  /** The wire ops of a local edit the server refused for good (undone locally). */
  rejected?: TextPrimitive[];
}

export type TokenSource = string | (() => string | Promise<string>);

export interface WebSocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export interface ClientOptions {
  /** http(s):// or ws(s):// base URL of the worker. */
  url: string;
  /**
   * A JWT, or a function returning one; the function is called again on 401 and near expiry.
   * With a function, an open socket is renewed in-band (`auth`) a minute before the token's `exp`
   * (the server closes sockets with 4401 at most 60 s after it); a fixed token stops with
   * `unauthorized` when the server closes its socket for expiry.
   */
  token: TokenSource;
  /** Per device or tab, 1–64 characters; a random id when absent. */
  clientId?: string;
  /** A WebSocket constructor (browsers: the global; Node 20: `ws`). */
  WebSocket?: new (url: string) => WebSocketLike;
  fetch?: typeof fetch;
  /** Where the last used seq per document is kept (default: localStorage when present, else memory). */
  storage?: StorageLike;
  /** Reconnect backoff: a random delay between 25% and 100% of min(maxMs, initialMs·2^attempt). */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Idle time before a heartbeat ping (ms; 0 disables) and how long to wait for any answer. */
  heartbeatMs?: number;
  /** Also the deadline of a connect handshake and of the probe after a failed one (default 10000; 0: none). */
  heartbeatTimeoutMs?: number;
  /** Quiet time after typing() before stopped_typing is sent (ms, default 2000). */
  typingTimeoutMs?: number;
  /** In browsers: a beforeunload prompt while edits are unacknowledged (default true). */
  preventUnsavedChanges?: boolean;
  /**
   * When the server can no longer replay what a text document missed (initial_state instead of
   * a replay), fetch the missed operations from GET /api/v1/operations/history and transform
   * local edits over them exactly (default true); otherwise local edits are rebased over a diff.
   */
  historyCatchUp?: boolean;
}

export interface Other {
  clientId: string;
  userId: string;
  name?: string;
  state: Record<string, unknown> | null;
  typing: boolean;
}

export interface Presence {
  user_id: string;
  status: "online" | "away" | "offline";
  in_studio: boolean;
  daw_type?: string | null;
  last_active?: number | string | null;
}

type Listener<T> = (arg: T) => void;

export declare class Emitter<Events extends Record<string, unknown> = Record<string, unknown>> {
  on<K extends keyof Events & string>(event: K, fn: Listener<Events[K]>): () => void;
  off<K extends keyof Events & string>(event: K, fn: Listener<Events[K]>): void;
  once<K extends keyof Events & string>(event: K, fn: Listener<Events[K]>): () => void;
}

interface ConnectionEvents {
  status: SyncStatus;
  synced: void;
  error: SidechainError;
  disconnect: { code: number };
  close: void;
  /** The server accepted a newer token in-band (`auth_ok`): the socket lives until `exp` (s). */
  token_renewed: { exp: number };
}

interface RoomEvents extends ConnectionEvents {
  others: Other[];
  join: { user: { id: string; name?: string }; client_id: string };
  leave: { user: { id: string; name?: string }; client_id: string };
  awareness: { client_id: string; user_id: string; state: Record<string, unknown> | null };
  typing: { user_id: string; name?: string };
  stopped_typing: { user_id: string; name?: string };
  presence: Presence;
  room_event: { name: string; data: unknown };
}

declare abstract class Connection<E extends ConnectionEvents> extends Emitter<E> {
  readonly status: SyncStatus;
  /**
   * Why the connection stopped retrying: 'unauthorized' | 'forbidden' (also a 4403 close: revoked
   * or no read grant any more) | 'client_id_taken' | 'deleted' | …, or null. A refused upgrade is
   * diagnosed by probing the same URL without `Upgrade`, so browsers get these too; a 429
   * (`rate_limited`, `too_many_connections`) is retried after its `Retry-After`.
   */
  readonly stopped: string | null;
  readonly connected: boolean;
  readonly stats: { connects: number; disconnects: number };
  /** Resolves when connected and nothing local is unacknowledged. */
  whenSynced(opts?: { timeoutMs?: number }): Promise<void>;
  close(): void;
}

declare abstract class Room<E extends RoomEvents> extends Connection<E> {
  readonly documentId: string;
  readonly clientId: string;
  readonly role: "write" | "read" | null;
  readonly version: number;
  /** The last seq this client used in this document. */
  readonly seq: number;
  /** Everyone else in the room, with awareness state and typing flag. */
  readonly others: Other[];
  readonly presence: Map<string, Presence>;
  readonly awareness: Record<string, unknown> | null;
  /** Awareness frames sent: setAwareness() goes out at most once per 50 ms, the latest state winning. */
  readonly awarenessSent: number;
  readonly hasUnsavedChanges: boolean;
  /** At most one frame per 50 ms per room: the first at once, the latest at the window's end (trailing edge). */
  setAwareness(state: Record<string, unknown> | null): void;
  /** Sends `typing` (refreshed while called) and `stopped_typing` after typingTimeoutMs of quiet. */
  typing(): void;
  stopTyping(): void;
}

export interface TextChange {
  /** True for this client's own edits. */
  local: boolean;
  /** What changed in `value`, as sequential primitives. */
  ops: TextPrimitive[];
  version: number;
  clientId?: string;
  userId?: string;
  /** The state was reloaded (initial_state after reconnect) and local edits rebased. */
  reset?: boolean;
  /** A refused local edit was undone. */
  rejected?: boolean;
}

interface TextEvents extends RoomEvents {
  change: TextChange;
  ack: { seq: number; version: number; noop?: boolean };
}

export declare class TextDoc extends Room<TextEvents> {
  /** The local text: the server's plus unacknowledged local edits. */
  readonly value: string;
  /** Length in code points. */
  readonly length: number;
  /** Number of local edits not yet acknowledged. */
  readonly pending: number;
  insert(position: number, text: string): void;
  delete(position: number, length: number): void;
  replace(position: number, length: number, text: string): void;
  setValue(text: string): void;
  applyOps(ops: TextPrimitive[]): void;
  static transformPosition(position: number, ops: TextPrimitive[]): number;
}

export interface CanvasChange {
  /** `view`: the viewport moved (strokes dropped at once, then `strokes_in_view` merged). */
  reason: "local" | "remote" | "ack" | "reset" | "rejected" | "view";
  strokes: Map<string, unknown>;
  version: number;
}

/** A canvas viewport (§8), in the strokes' own coordinates; rectangles are closed (touching counts). */
export interface Viewport {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface CanvasOptions {
  /** Load and keep current only the strokes intersecting this rectangle (and those without a box). */
  viewport?: Viewport | null;
}

export declare class CanvasDoc extends Room<RoomEvents & { change: CanvasChange; version: number }> {
  /**
   * The strokes as shown. With a viewport: exactly the strokes in it (plus those without a box),
   * kept current; a stroke that leaves the view, by anyone's edit, is dropped.
   */
  readonly strokes: Map<string, unknown>;
  readonly pending: number;
  /** The current view, or null for the whole canvas. */
  readonly viewport: Viewport | null;
  /** Strokes on the whole canvas at the last (re)connect (`strokes_total`), null before it. */
  readonly strokesTotal: number | null;
  /**
   * Moves the view (null: the whole canvas): strokes outside it are dropped at once; resolves
   * once the new view's strokes are all here (after a reconnect too). Throws a TypeError /
   * RangeError for a rectangle that is not finite numbers with sizes ≥ 0. The event `version`
   * says the server announced versions skipped outside the view.
   */
  setViewport(viewport: Viewport | null): Promise<void>;
  submit(ops: CanvasPrimitive[]): Promise<OperationAck>;
  createStroke(data: unknown, strokeId?: string): string;
  updateStroke(strokeId: string, data: unknown): Promise<OperationAck>;
  deleteStroke(strokeId: string): Promise<OperationAck>;
  clear(): Promise<OperationAck>;
}

export interface EngagementCounts {
  like_count: number;
  comment_count: number;
  repost_count: number;
  save_count: number;
  reactions?: Record<string, number>;
}

/** A comment made on the post, by anyone (from the room's broadcasts) or by us (`local`, from our ack). */
export interface CommentEvent {
  comment_id: string;
  /** null for our own comment (the ack names no user) */
  user_id: string | null;
  text: string;
  /** ms since the epoch (the server's time) */
  created_at: number;
  local: boolean;
}

export declare class PostDoc extends Room<
  RoomEvents & { change: { reason: string; counts: EngagementCounts; version: number }; comment: CommentEvent; uncomment: { comment_id: string; user_id: string | null } }
> {
  readonly postId: string;
  readonly counts: EngagementCounts;
  readonly pending: number;
  like(emoji?: string): Promise<OperationAck>;
  unlike(): Promise<OperationAck>;
  repost(): Promise<OperationAck>;
  unrepost(): Promise<OperationAck>;
  save(): Promise<OperationAck>;
  unsave(): Promise<OperationAck>;
  comment(text: string): Promise<{ commentId: string | null; ack: OperationAck }>;
  uncomment(commentId: string): Promise<OperationAck>;
  /** One page of comments, newest first (REST); pass next_before back as before. */
  comments(opts?: { limit?: number; before?: string }): Promise<CommentPage>;
}

export interface Comment {
  comment_id: string;
  user_id: string;
  name: string | null;
  text: string;
  /** ms since the epoch */
  created_at: number;
}

export interface CommentPage {
  comments: Comment[];
  next_before: string | null;
}

export interface Notification {
  kind: string;
  event_id?: string;
  post_id?: string;
  actor?: { id: string; name?: string };
  counts?: EngagementCounts;
  payload?: Record<string, unknown>;
  /** Per-user, strictly increasing on every kept notification, new or updated (§5.3). Absent on transient events. */
  seq?: number;
  /** An aggregated owner notification (§5.2): distinct actors, the latest three (newest first). */
  count?: number;
  actors?: Array<{ id: string; name?: string }>;
  updated_at?: number;
  /** True when this is an update of an item already sent (same event_id). */
  updated?: boolean;
  /** True for a `store: false` event: shown live, not kept, no unread change. */
  transient?: boolean;
  [k: string]: unknown;
}

/** A watched user's playback (`playback_started` / `playback_stopped` on the wire). */
export interface Playback {
  user_id: string;
  state: "started" | "stopped";
  track_id: string | null;
  position_ms: number | null;
}

export declare class Channel extends Connection<
  ConnectionEvents & { notification: Notification; notification_count: { unread: number }; presence: Presence; playback: Playback; activity: unknown; message: unknown; engagement_update: PostCounts }
> {
  readonly presence: Map<string, Presence>;
  readonly notifications: Notification[];
  readonly unread: number | null;
  /** The highest notification seq seen; the channel reconnects with `?since_seq=` it. */
  readonly lastSeq: number | null;
  watchPresence(userIds: string[]): void;
  /** `ttl` (1–300 s): a lease; the status holds without any open socket until it lapses. */
  setPresence(p: { status: "online" | "away" | "offline"; in_studio: boolean; daw_type?: string; visible?: boolean; ttl?: number }): Promise<unknown>;
  /** Pushed to the user's watchers within their presence audience as `playback`. */
  setPlayback(state: "started" | "stopped", opts?: { trackId?: string; positionMs?: number }): void;
  markRead(eventIds: string[] | "all"): Promise<unknown>;
}

export type PostCounts = EngagementCounts & { post_id: string; version: number };

/**
 * `client.feed(postIds)`: the latest counts of up to 100 posts, kept live (§6.2).
 * `error`: the batch read failed (an `ApiError`; the watch's answer still brings the counts) or the
 * server refused the watch (`{code, message}`, e.g. `too_large`: over 200 posts across the user's sockets).
 * More than 100 ids throws a RangeError, a malformed id (not `^[A-Za-z0-9_.:@-]{1,251}$`) a TypeError.
 */
export declare class Feed extends Emitter<{ change: PostCounts; error: ApiError | { code: string; message?: string } }> {
  /** post id (without `post:`) → its latest counts; a post the user may not read is absent. */
  readonly counts: Map<string, PostCounts>;
  readonly postIds: string[];
  /** Resolves once the batch read of the current posts is in. */
  readonly ready: Promise<void>;
  /** Replaces the posts (≤ 100; more throws a RangeError). */
  setPosts(postIds: string[]): Promise<void>;
  get(postId: string): PostCounts | undefined;
  close(): void;
}

/** `client.yjs(id)`: a Yjs document (§3.6) on the npm `y-websocket` provider. */
export declare class YjsRoom extends Emitter<{ status: "connecting" | "connected" | "disconnected"; synced: true; error: SidechainError }> {
  readonly documentId: string;
  /** The document: bind it to any Yjs editor (y-prosemirror, y-codemirror, y-quill, …). */
  readonly doc: import("yjs").Doc;
  readonly provider: import("y-websocket").WebsocketProvider;
  /** Cursors and names (y-protocols awareness); the server owns them per socket. */
  readonly awareness: import("y-websocket").WebsocketProvider["awareness"];
  readonly synced: boolean;
  whenSynced(): Promise<void>;
  /** Disconnects; the Y.Doc is destroyed only when the SDK made it. */
  close(): void;
}
export * as Y from "yjs";

export interface OperationAck {
  document_id: string;
  client_id: string;
  seq: number;
  version: number;
  server_timestamp: number;
  status: "accepted" | "transformed" | "noop" | "duplicate";
  ops: Array<TextPrimitive | CanvasPrimitive | ModifyPrimitive>;
  operation_id?: string;
  reason?: string | null;
  original_position?: number | null;
  transformed_position?: number | null;
}

export declare class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details?: unknown;
  readonly retryAfterMs?: number;
}

export declare class SidechainClient extends Emitter<{ status: SyncStatus; unsaved: boolean }> {
  constructor(options: ClientOptions);
  readonly clientId: string;
  readonly online: boolean;
  /** The least advanced status of all open connections. */
  readonly status: SyncStatus;
  /** True while any document has unacknowledged local edits (the "unsaved changes" signal). */
  readonly hasUnsavedChanges: boolean;
  text(documentId: string): TextDoc;
  /** A canvas; `{viewport}` loads only the strokes in that rectangle (§8). Opening an open canvas again with a viewport moves its view. */
  canvas(id: string, opts?: CanvasOptions): CanvasDoc;
  post(id: string): PostDoc;
  /** A Yjs document (`ydoc:` is added when missing); `opts.doc`: your own Y.Doc. */
  yjs(id: string, opts?: { doc?: import("yjs").Doc }): YjsRoom;
  /** `sinceSeq`: the highest seq an earlier session saw (`channel().lastSeq`), to resume from it. */
  channel(opts?: { sinceSeq?: number }): Channel;
  /** A live map of posts' counts: a batch read, then `watch_posts` (≤ 1 update/s per post); survives reconnects. */
  feed(postIds: string[]): Feed;
  /** Many posts' counts in as few requests as possible (100 ids each), keyed by post id. */
  feedCounts(postIds: string[]): Promise<Record<string, EngagementCounts & { post_id: string; version: number }>>;
  whenSynced(opts?: { timeoutMs?: number }): Promise<void>;
  goOffline(): void;
  goOnline(): void;
  close(): void;
  api<T = unknown>(path: string, init?: { method?: string; body?: unknown; headers?: Record<string, string> }): Promise<T>;
}

/** A stroke's bounding box as the server computes it (§8), or null (no box: in every view). */
export declare function strokeBox(data: unknown): { minX: number; minY: number; maxX: number; maxY: number } | null;
/** Whether stroke data is in a viewport (null: everything), by §8's rule. */
export declare function inView(data: unknown, viewport: Viewport | null): boolean;

/** OT helpers on the wire form (ot-text-unicode underneath). */
export declare namespace ot {
  type TextOp = Array<number | string | { d: number | string }>;
  function fromWire(prims: TextPrimitive[]): TextOp;
  function toWire(op: TextOp): TextPrimitive[];
  function applyWire(text: string, prims: TextPrimitive[]): string;
  /** `a` (by client aId) transformed to apply after `b` (by bId), both made against one text. */
  function transformWire(a: TextPrimitive[], aId: string, b: TextPrimitive[], bId: string): TextPrimitive[];
  function compareIds(a: string, b: string): -1 | 0 | 1;
  function cpLength(s: string): number;
}
