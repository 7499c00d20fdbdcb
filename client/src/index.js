// @sidechain/realtime: the client SDK of Sidechain Edge Realtime (see docs/protocol.md).
export { SidechainClient, ApiError } from "./client.js";
export { TextDoc } from "./text.js";
export { PostDoc } from "./queued.js";
export { CanvasDoc } from "./canvas.js";
export { strokeBox, inView } from "./geom.js";
export { Channel } from "./channel.js";
export { Feed } from "./feed.js";
export { YjsRoom, Y } from "./yjs.js";
export { Emitter } from "./emitter.js";
export * as ot from "./ot.js";
