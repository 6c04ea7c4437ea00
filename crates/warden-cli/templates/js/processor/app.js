// {{name}}: {{description}}
import { log } from 'warden:plugin/logging@0.1.0';

const NAME = '{{name}}';
const VERSION = '0.1.0';

export const plugin = {
  getMetadata() {
    return { name: NAME, version: VERSION, description: '{{description}}', author: 'you' };
  },
  initialize(_config) {
    log('info', `${NAME} ready`);
  },
  shutdown() {},
  getStatus() {
    return 'ready';
  },
};

export const processing = {
  process(request) {
    let text;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(request.input);
    } catch {
      // An error for the caller: throw the plugin-error value itself. Throwing
      // anything else (an Error, a string) traps the instance.
      throw { tag: 'invalid-input', val: 'the input is not UTF-8 text' };
    }
    log('info', `uppercasing ${text.length} characters`);
    return {
      output: new TextEncoder().encode(text.toUpperCase()),
      contentType: 'text/plain',
      itemsProcessed: BigInt(text.length),
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
