/**
 * Conversations kept in localStorage: a list to switch between, the current one remembered, so a reload
 * brings everything back. Server chats and in-tab chats keep separate lists (different models).
 */
export interface ToolCallOut { id?: string; type: "function"; function: { name: string; arguments: string } }

export interface Message {
  role: "user" | "assistant";
  content: string;
  tool_calls?: ToolCallOut[];
  /** "42 tokens · 310.5 tok/s" as shown under the reply. */
  stats?: string;
}

export interface Conversation { id: string; title: string; messages: Message[]; updated: number }

interface Saved { current: string | null; conversations: Conversation[] }

const newId = () => Date.now().toString(36) + Math.random().toString(36).slice(2, 8);

export class ConversationStore {
  private data: Saved;

  constructor(private readonly key: string, legacyKey?: string) {
    this.data = this.read();
    // the first version of the chat page kept one history under another key: bring it over once
    if (legacyKey && !this.data.conversations.length) {
      try {
        const old = JSON.parse(localStorage.getItem(legacyKey) ?? "null");
        if (Array.isArray(old) && old.length) {
          const c = this.create();
          c.messages = old.filter((m) => m && (m.role === "user" || m.role === "assistant")).map((m) => ({ role: m.role, content: String(m.content ?? "") }));
          this.save(c);
        }
        localStorage.removeItem(legacyKey);
      } catch { /* unreadable: ignored */ }
    }
  }

  private read(): Saved {
    try {
      const v = JSON.parse(localStorage.getItem(this.key) ?? "null");
      if (v && Array.isArray(v.conversations)) return v as Saved;
    } catch { /* corrupt: start over */ }
    return { current: null, conversations: [] };
  }

  private write(): void {
    try {
      localStorage.setItem(this.key, JSON.stringify(this.data));
    } catch (e) {
      throw new Error(`Could not save the conversations (${(e as Error).name}): the browser's storage for this page is full — delete old conversations`);
    }
  }

  /** Newest first. */
  list(): Conversation[] {
    return [...this.data.conversations].sort((a, b) => b.updated - a.updated);
  }

  current(): Conversation {
    return this.data.conversations.find((c) => c.id === this.data.current) ?? this.create();
  }

  select(id: string): Conversation {
    this.data.current = id;
    this.write();
    return this.current();
  }

  /** A new empty conversation, made current (an empty one already current is reused). */
  create(): Conversation {
    const cur = this.data.conversations.find((c) => c.id === this.data.current);
    if (cur && cur.messages.length === 0) return cur;
    const c: Conversation = { id: newId(), title: "New chat", messages: [], updated: Date.now() };
    this.data.conversations.push(c);
    this.data.current = c.id;
    this.write();
    return c;
  }

  save(c: Conversation): void {
    const first = c.messages.find((m) => m.role === "user");
    c.title = first ? first.content.replace(/\s+/g, " ").trim().slice(0, 48) || "New chat" : "New chat";
    c.updated = Date.now();
    const i = this.data.conversations.findIndex((x) => x.id === c.id);
    if (i >= 0) this.data.conversations[i] = c;
    else this.data.conversations.push(c);
    this.write();
  }

  remove(id: string): void {
    this.data.conversations = this.data.conversations.filter((c) => c.id !== id);
    if (this.data.current === id) this.data.current = this.list()[0]?.id ?? null;
    this.write();
  }
}
