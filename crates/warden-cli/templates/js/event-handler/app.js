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

export const eventHandling = {
  onEvent(event) {
    const payload = new TextDecoder().decode(event.payload);
    log('info', `${event.eventType} from ${event.source} at ${event.timestamp}: ${payload}`);
    // To publish an event: import { emitEvent } from 'warden:plugin/events@0.1.0';
    //   emitEvent('thing.happened', new TextEncoder().encode('{"id": 1}'));
  },
  supportedEvents() {
    // Exact types ('order.created'), prefixes ('order.*') or '*' for all.
    return ['*'];
  },
};
