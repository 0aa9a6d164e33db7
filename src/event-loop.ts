/**
 * yieldToEventLoop(): let other queued work run (I/O callbacks, the server's other requests, a Ctrl-C handler)
 * before a long loop continues. Node: a setImmediate turn. Browsers have no setImmediate: a MessageChannel task
 * (setTimeout would add its 4 ms clamp to every generated token).
 */
type Schedule = (run: () => void) => void;

let schedule: Schedule | undefined;

function pickScheduler(): Schedule {
  const g = globalThis as { setImmediate?: (f: () => void) => unknown };
  if (typeof g.setImmediate === "function") return (run) => { g.setImmediate!(run); };
  if (typeof MessageChannel === "function") {
    const channel = new MessageChannel();
    const queue: (() => void)[] = [];
    // (assigning onmessage starts the port; Node's types do not list the setter, browsers' do)
    (channel.port1 as unknown as { onmessage: () => void }).onmessage = () => queue.shift()?.();
    return (run) => { queue.push(run); channel.port2.postMessage(0); };
  }
  return (run) => { setTimeout(run, 0); };
}

export function yieldToEventLoop(): Promise<void> {
  schedule ??= pickScheduler();
  return new Promise<void>((resolve) => schedule!(resolve));
}
