// word-count-js: counts bytes, lines and words of the input (cross-language conformance plugin).
import { log } from 'warden:plugin/logging@0.1.0';

const NAME = 'word-count-js';
const VERSION = '0.1.0';

// Bytes that separate words: space, \t, \n, \v, \f, \r.
function isSpace(b) {
  return b === 0x20 || (b >= 0x09 && b <= 0x0d);
}

function count(data) {
  let lines = 0;
  let words = 0;
  let inWord = false;
  for (let i = 0; i < data.length; i++) {
    const b = data[i];
    if (b === 0x0a) lines++;
    if (isSpace(b)) {
      inWord = false;
    } else if (!inWord) {
      inWord = true;
      words++;
    }
  }
  return { bytes: data.length, lines, words };
}

export const plugin = {
  getMetadata() {
    return {
      name: NAME,
      version: VERSION,
      description: 'Counts bytes, lines and words of the input (conformance plugin).',
      author: 'Warden examples',
    };
  },
  initialize(_config) {
    log('info', 'word-count ready');
  },
  shutdown() {},
  getStatus() {
    return 'ready';
  },
};

export const processing = {
  process(request) {
    const { bytes, lines, words } = count(request.input);
    const out = `{"bytes":${bytes},"lines":${lines},"words":${words}}`;
    return {
      output: new TextEncoder().encode(out),
      contentType: 'application/json',
      itemsProcessed: BigInt(words),
    };
  },
  validate(input) {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(input);
      return true;
    } catch {
      return false;
    }
  },
};
