// Same-browser discovery over BroadcastChannel: the live peer list, leaving (bye and silent),
// stable ids across reloads, duplicated tabs, and relayed messages reaching only their addressee.

import { Signaling, type PeerLeftDetail, type SignalMessage } from '../src/transport/signaling.js';
import { equal, eventually, notEqual, ok } from './helpers/assert.js';

/** A Storage of our own, as each tab's sessionStorage is. */
class MemoryStorage implements Storage {
  private m = new Map<string, string>();
  get length() {
    return this.m.size;
  }
  clear() {
    this.m.clear();
  }
  getItem(k: string) {
    return this.m.get(k) ?? null;
  }
  key(i: number) {
    return [...this.m.keys()][i] ?? null;
  }
  removeItem(k: string) {
    this.m.delete(k);
  }
  setItem(k: string, v: string) {
    this.m.set(k, v);
  }
}

let all: Signaling[] = [];
afterEach(() => {
  for (const s of all.splice(0)) s.close();
});

const room = () => `tabmig-sig-test-${Math.random().toString(36).slice(2)}`;
function make(channelName: string, opts: { name?: string; storage?: Storage | null; queryIntervalMs?: number } = {}): Signaling {
  const s = new Signaling({ channelName, storage: null, queryIntervalMs: 200, ...opts });
  all.push(s);
  return s;
}

describe('transport: signaling', () => {
  it('keeps a live peer list with names and incoming state', async () => {
    const ch = room();
    const a = make(ch, { name: 'Alice' });
    const b = make(ch, { name: 'Bob' });
    await eventually(() => a.peer(b.id) && b.peer(a.id), 3000, 'mutual discovery');
    equal(a.peer(b.id)!.name, 'Bob');
    equal(a.peers.length, 1, 'a tab does not list itself');
    const seen: number[] = [];
    const unsubscribe = a.subscribe((peers) => seen.push(peers.length));
    equal(seen[0], 1, 'subscribe calls back at once');
    b.setIncoming(true);
    await eventually(() => a.peer(b.id)!.incoming, 3000, 'incoming flag');
    b.setName('Bob (destination)');
    await eventually(() => a.peer(b.id)!.name === 'Bob (destination)', 3000, 'rename');
    ok(seen.length >= 3, 'peers events for each change');
    unsubscribe();
    const c = make(ch, { name: 'Carol' });
    await eventually(() => a.peers.length === 2, 3000, 'third tab');
    equal(a.peers.map((p) => p.name).join(), 'Bob (destination),Carol');
    void c;
  });

  it('drops a tab at once when it says bye, and a silent one after missed queries', async () => {
    const ch = room();
    const a = make(ch);
    const b = make(ch);
    const c = make(ch);
    await eventually(() => a.peers.length === 2, 3000, 'discovery');
    const left: PeerLeftDetail[] = [];
    a.addEventListener('peer-left', (e) => left.push((e as CustomEvent<PeerLeftDetail>).detail));
    b.close();
    await eventually(() => !a.peer(b.id), 1000, 'bye handled');
    equal(left[0].id, b.id);
    equal(left[0].reason, 'bye');
    c.close({ announce: false }); // like a crashed tab
    ok(a.peer(c.id), 'still listed right after going silent');
    await eventually(() => !a.peer(c.id), 3000, 'silent tab expired');
    equal(left[1].reason, 'timeout');
  });

  it('keeps its id across a reload (same sessionStorage)', () => {
    const ch = room();
    const storage = new MemoryStorage();
    const first = make(ch, { storage });
    const id = first.id;
    first.close();
    const reloaded = make(ch, { storage });
    equal(reloaded.id, id);
    equal(storage.getItem('tabmig-peer-id'), id);
  });

  it('a duplicated tab (copied sessionStorage) takes a new id; the original keeps its own', async () => {
    const ch = room();
    const original = make(ch, { storage: new MemoryStorage() });
    const observer = make(ch);
    await eventually(() => observer.peer(original.id), 3000, 'original seen');
    const copied = new MemoryStorage();
    copied.setItem('tabmig-peer-id', original.id);
    let changed: { old: string; id: string } | null = null;
    const duplicate = new Signaling({ channelName: ch, storage: copied, queryIntervalMs: 200 });
    all.push(duplicate);
    duplicate.addEventListener('id', (e) => (changed = (e as CustomEvent).detail));
    equal(duplicate.id, original.id, 'starts with the copied id');
    await eventually(() => changed, 3000, 'duplicate renamed');
    notEqual(duplicate.id, original.id);
    equal(copied.getItem('tabmig-peer-id'), duplicate.id, 'new id persisted');
    const origId = original.id;
    await eventually(() => observer.peer(duplicate.id) && observer.peer(origId)?.instance === original.instance, 3000, 'both listed, right instances');
    equal(original.id, origId);
  });

  it('relays a message only to the peer it is addressed to', async () => {
    const ch = room();
    const a = make(ch);
    const b = make(ch);
    const c = make(ch);
    await eventually(() => a.peers.length === 2, 3000, 'discovery');
    const atB: SignalMessage[] = [];
    const atC: SignalMessage[] = [];
    b.addEventListener('signal', (e) => {
      e.preventDefault();
      atB.push((e as CustomEvent<SignalMessage>).detail);
    });
    c.addEventListener('signal', (e) => atC.push((e as CustomEvent<SignalMessage>).detail));
    a.sendSignal(b.id, 'conn1', { type: 'candidate', candidate: 'x' });
    await eventually(() => atB.length, 2000, 'delivered');
    equal(atB[0].from, a.id);
    equal(atB[0].conn, 'conn1');
    equal(atC.length, 0);
  });

  it('ignores an offer nobody in the tab is listening for (a flood of them too), and answers queries a few times a second', async () => {
    const ch = room();
    const a = make(ch);
    const b = make(ch);
    await eventually(() => a.peer(b.id), 3000, 'discovery');
    const got: SignalMessage[] = [];
    const notes: string[] = [];
    a.addEventListener('signal', (e) => got.push((e as CustomEvent<SignalMessage>).detail));
    b.addEventListener('note', (e) => notes.push((e as CustomEvent<string>).detail));
    for (let i = 0; i < 50; i++) a.sendSignal(b.id, `c${i}`, { type: 'offer', sdp: 'v=0' });
    await eventually(() => notes.some((n) => /while this tab is not waiting for a migration; ignored/.test(n)), 3000, 'noted');
    await new Promise((r) => setTimeout(r, 500));
    equal(got.length, 0, 'no refusal comes back: a tab that is not waiting sends nothing');
    // Queries: each would make B announce; a burst of them makes only a few announcements.
    let announces = 0;
    const spy = new BroadcastChannel(ch);
    spy.onmessage = (e) => {
      if ((e.data as { type?: string; peer?: { id?: string } })?.type === 'announce' && (e.data as { peer: { id: string } }).peer.id === b.id) announces++;
    };
    const t0 = Date.now();
    for (let i = 0; i < 40; i++) (a as unknown as { query(): void }).query();
    await new Promise((r) => setTimeout(r, 1000));
    spy.close();
    const perSecond = announces / ((Date.now() - t0) / 1000);
    ok(perSecond <= 7, `40 queries made ${announces} announcements in ${Date.now() - t0} ms`);
    ok(announces >= 1, 'queries are still answered');
  });
});
