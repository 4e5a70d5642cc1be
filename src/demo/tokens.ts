// Deterministic stand-in "tokenizer" for the demo model server.
//
// Token-count rule (used for prompt_tokens, completion_tokens and embeddings):
//   - whitespace (ASCII space, \t \n \v \f \r and the Unicode space separators)
//     separates tokens and is never a token itself;
//   - a maximal run of "word" characters is ONE token, where a word character is
//     an ASCII letter or digit, "_", or any non-ASCII, non-space character
//     (so "héllo", "naïve" and "日本語" each count as one token when unbroken);
//   - every other character (ASCII punctuation, symbols, control characters)
//     is ONE token on its own.
// Examples: "Hello, world!" -> 4 (Hello , world !); "it's 3.5" -> 6
// (it ' s 3 . 5); "" -> 0.
//
// The reply generator below emits exactly these tokens, so counting the text of
// a generated reply with countTokens() gives back the number of pieces streamed.

const SPACE = 0;
const WORD = 1;
const PUNCT = 2;
type CharClass = typeof SPACE | typeof WORD | typeof PUNCT;

function isUnicodeSpace(c: number): boolean {
  return (
    c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff
  );
}

function classify(c: number): CharClass {
  if (c < 128) {
    if (c === 32 || (c >= 9 && c <= 13)) return SPACE;
    if ((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95) {
      return WORD;
    }
    return PUNCT;
  }
  return isUnicodeSpace(c) ? SPACE : WORD;
}

/** Number of tokens in `text` under the rule documented at the top of this file. */
export function countTokens(text: string): number {
  let count = 0;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const cls = classify(text.charCodeAt(i));
    if (cls === WORD) {
      if (!inWord) {
        count++;
        inWord = true;
      }
    } else {
      inWord = false;
      if (cls === PUNCT) count++;
    }
  }
  return count;
}

/**
 * Append up to `limit - out.length` tokens of `text` to `out`, each as it should
 * be streamed: with a single leading space when whitespace preceded it (or when
 * `spaceFirst` is set for the first one), except at the very start of the
 * output. Whitespace runs (including newlines) collapse to one space.
 */
export function appendTokenPieces(text: string, out: string[], limit: number, spaceFirst: boolean): void {
  let pendingSpace = spaceFirst;
  let i = 0;
  const n = text.length;
  while (i < n && out.length < limit) {
    const cls = classify(text.charCodeAt(i));
    if (cls === SPACE) {
      pendingSpace = true;
      i++;
      continue;
    }
    let end = i + 1;
    if (cls === WORD) {
      while (end < n && classify(text.charCodeAt(end)) === WORD) end++;
    }
    const tok = text.slice(i, end);
    out.push(pendingSpace && out.length > 0 ? ' ' + tok : tok);
    pendingSpace = false;
    i = end;
  }
}

const FILLER = ['lorem', 'ipsum', 'dolor', 'sit', 'amet', 'consectetur', 'adipiscing', 'elit', 'sed', 'do', 'eiusmod', 'tempor'];
const REPLY_PREFIX = 'Demo reply to:';

/**
 * The deterministic reply to a prompt, as exactly `count` streamable pieces
 * (one token each): "Demo reply to: <tokens of the prompt>", cut at `count`
 * tokens or padded with filler words up to it.
 */
export function replyPieces(prompt: string, count: number): string[] {
  const out: string[] = [];
  if (count <= 0) return out;
  appendTokenPieces(REPLY_PREFIX, out, count, false);
  appendTokenPieces(prompt, out, count, true);
  for (let i = 0; out.length < count; i++) {
    out.push(' ' + (FILLER[i % FILLER.length] ?? 'lorem'));
  }
  return out;
}
