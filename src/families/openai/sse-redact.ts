/**
 * Redaction of generated text in an OpenAI SSE stream: where the text is in
 * OpenAI's chunk events — each choice's `content`, `refusal` and reasoning
 * deltas, every tool call's `arguments` fragments, and a completion's `text`.
 * Each is its own slot, held back across chunk boundaries by the shared
 * engine (../common/sse-hold-back.ts); everything else in an event (role,
 * tool call ids and names, finish, usage, unknown fields) goes on as an event
 * of its own with its strings redacted.
 */
import type { RedactFn, Span } from '../../pipeline/ports.ts';
import { SseHoldBackRedactor, type SseEvent, type SseParts, type SseTextCodec, type TextSlot } from '../common/sse-hold-back.ts';

export type { RedactFn, Span };

type Json = Record<string, unknown>;

/** Delta fields that carry generated text, and the slot kind each is. */
const DELTA_TEXT = { content: 'content', refusal: 'refusal', reasoning_content: 'reasoning_content', reasoning: 'reasoning' } as const;
type TextField = keyof typeof DELTA_TEXT;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

const OPENAI_TEXT: SseTextCodec<Json> = {
  read(event: SseEvent): SseParts<Json> | null {
    const json = event.json;
    if (!isObj(json) || !Array.isArray(json['choices']) || json['choices'].length === 0) return null;
    const slots: TextSlot<Json>[] = [];
    let head = false;
    let tail = false;
    const restChoices: Json[] = [];
    for (const raw of json['choices'] as unknown[]) {
      if (!isObj(raw)) return null;
      const index = typeof raw['index'] === 'number' ? raw['index'] : 0;
      const rest: Json = { ...raw };
      if (raw['finish_reason'] != null) tail = true;
      if (typeof raw['text'] === 'string') {
        slots.push({ key: `${index}:text`, text: raw['text'], template: json });
        delete rest['text'];
      }
      if (isObj(raw['delta'])) {
        const delta: Json = { ...raw['delta'] };
        for (const field of Object.keys(DELTA_TEXT) as TextField[]) {
          const t = delta[field];
          if (typeof t !== 'string') continue;
          slots.push({ key: `${index}:${field}`, text: t, template: json });
          delete delta[field];
        }
        if (Array.isArray(delta['tool_calls'])) {
          const calls: Json[] = [];
          for (const c of delta['tool_calls'] as unknown[]) {
            if (!isObj(c)) return null;
            const call: Json = { ...c };
            const fn = isObj(c['function']) ? { ...c['function'] } : null;
            const callIndex = typeof c['index'] === 'number' ? c['index'] : 0;
            if (fn !== null && typeof fn['arguments'] === 'string') {
              slots.push({ key: `${index}:tool:${callIndex}`, text: fn['arguments'], template: json });
              // The opening fragment (id, name) keeps an empty arguments string, as servers send it.
              fn['arguments'] = '';
              call['function'] = fn;
            }
            const opens = Object.keys(call).some((k) => k !== 'index' && k !== 'function') || (fn !== null && Object.keys(fn).some((k) => k !== 'arguments'));
            if (opens) {
              head = true;
              calls.push(call);
            }
          }
          if (calls.length > 0) delta['tool_calls'] = calls;
          else delete delta['tool_calls'];
        }
        if (Object.keys(delta).length > 0) {
          if ('role' in delta) head = true;
          rest['delta'] = delta;
        } else delete rest['delta'];
      }
      // A choice that kept anything but its index (a role, a tool call's opening, a finish) goes on as the rest.
      if (Object.keys(rest).some((k) => k !== 'index' && !(k === 'finish_reason' && rest[k] == null) && !(k === 'logprobs' && rest[k] == null)))
        restChoices.push(rest);
    }
    if (slots.length === 0) return null;
    const rest = restChoices.length === 0 && !hasOtherContent(json) ? null : { ...json, choices: restChoices };
    return { slots, rest, order: tail && !head ? 'text-first' : 'rest-first' };
  },
  render(template: Json, key: string, text: string): string {
    const [index, kind, callIndex] = key.split(':') as [string, string, string | undefined];
    const i = Number(index);
    let choice: Json;
    if (kind === 'text') choice = { index: i, text, finish_reason: null };
    else if (kind === 'tool') choice = { index: i, delta: { tool_calls: [{ index: Number(callIndex), function: { arguments: text } }] }, finish_reason: null };
    else choice = { index: i, delta: { [kind]: text }, finish_reason: null };
    const { usage: _usage, ...top } = template;
    return `data: ${JSON.stringify({ ...top, choices: [choice] })}\n\n`;
  },
  structural: new Set(['id', 'object', 'model', 'system_fingerprint', 'finish_reason', 'role', 'type', 'service_tier']),
};

/** Whether a chunk carries something besides its choices that must reach the client (usage, unknown fields). */
function hasOtherContent(json: Json): boolean {
  return Object.keys(json).some((k) => !['id', 'object', 'created', 'model', 'system_fingerprint', 'choices', 'service_tier'].includes(k) && json[k] != null);
}

/** Generated text of an OpenAI SSE stream, redacted across chunk boundaries (see ../common/sse-hold-back.ts). */
export class SseRedactor extends SseHoldBackRedactor<Json> {
  constructor(redact: RedactFn, holdBack: number) {
    super(OPENAI_TEXT, redact, holdBack);
  }
}
