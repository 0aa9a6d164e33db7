/**
 * The one Node global the library's generate() uses that browsers lack: setImmediate, with which it yields
 * between tokens. Browsers get it as a MessageChannel task (setTimeout would add a 4 ms clamp per token).
 */
const g = globalThis as { setImmediate?: (f: () => void) => unknown };
if (typeof g.setImmediate !== "function") {
  const channel = new MessageChannel();
  const queue: (() => void)[] = [];
  // (the onmessage setter starts the port; Node's types do not list it, browsers' do)
  (channel.port1 as unknown as { onmessage: () => void }).onmessage = () => queue.shift()?.();
  g.setImmediate = (f: () => void) => { queue.push(f); channel.port2.postMessage(0); };
}
export {};
