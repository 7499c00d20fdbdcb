// A minimal event emitter (the SDK runs in browsers too, so no node:events).
export class Emitter {
  #handlers = new Map();

  /** Adds a listener; returns a function that removes it. */
  on(event, fn) {
    if (!this.#handlers.has(event)) this.#handlers.set(event, new Set());
    this.#handlers.get(event).add(fn);
    return () => this.off(event, fn);
  }

  off(event, fn) {
    this.#handlers.get(event)?.delete(fn);
  }

  once(event, fn) {
    const off = this.on(event, (...args) => {
      off();
      fn(...args);
    });
    return off;
  }

  emit(event, ...args) {
    const set = this.#handlers.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (e) {
        // A listener's bug must not break the sync state machine.
        console.error(`@sidechain/realtime: '${event}' listener threw`, e);
      }
    }
  }

  listenerCount(event) {
    return this.#handlers.get(event)?.size ?? 0;
  }
}
