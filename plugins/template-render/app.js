// template-render: renders a mustache-like template.
//
// Input: the template text; values come from the call's options (key=value).
// With content type application/json the input is instead
// {"template": "...", "data": {...}}: values come from `data`, and options
// fill in keys that `data` lacks.
//
// Tags: {{name}} (HTML-escaped), {{{name}}} and {{&name}} (raw), dotted paths
// {{user.name}}, {{.}} (the current item), sections {{#list}}...{{/list}}
// (once per array item, or once for a truthy value), inverted sections
// {{^list}}...{{/list}} and comments {{! ... }}. A section tag alone on its
// line takes the line with it.
//
// Options: strict=false renders a missing variable as empty (default: the
// call fails with invalid-input naming it; a missing section name is simply
// false); html=true makes the output text/html (default text/plain).

import { log } from 'warden:plugin/logging@0.1.0';

const NAME = 'template-render';
const VERSION = '0.1.0';
const MISSING = Symbol('missing');

class RenderError extends Error {}

// Results: an error is returned by throwing the plugin-error variant value.
function invalidInput(message) {
  return { tag: 'invalid-input', val: message };
}

function lineOf(text, pos) {
  let line = 1;
  for (let i = 0; i < pos; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

const NAME_RE = /^(\.|[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*)$/;

// Splits the template into text and tag tokens.
function tokenize(src) {
  const tokens = [];
  let pos = 0;
  while (pos < src.length) {
    const open = src.indexOf('{{', pos);
    if (open < 0) {
      tokens.push({ type: 'text', value: src.slice(pos) });
      break;
    }
    if (open > pos) tokens.push({ type: 'text', value: src.slice(pos, open) });
    let type;
    let body;
    let end;
    if (src.startsWith('{{{', open)) {
      const close = src.indexOf('}}}', open + 3);
      if (close < 0) throw new RenderError(`line ${lineOf(src, open)}: unclosed tag \`{{{\``);
      type = '&';
      body = src.slice(open + 3, close).trim();
      end = close + 3;
    } else {
      const close = src.indexOf('}}', open + 2);
      if (close < 0) throw new RenderError(`line ${lineOf(src, open)}: unclosed tag \`{{\``);
      body = src.slice(open + 2, close).trim();
      end = close + 2;
      const sigil = body.charAt(0);
      if ('#^/!&'.includes(sigil) && sigil !== '') {
        type = sigil;
        body = body.slice(1).trim();
      } else {
        type = 'name';
      }
    }
    const line = lineOf(src, open);
    if (type !== '!' && !NAME_RE.test(body)) {
      throw new RenderError(`line ${line}: \`${src.slice(open, end)}\` is not a valid tag; names are letters, digits, \`_\`, \`-\` and dots`);
    }
    tokens.push({ type, name: body, line });
    pos = end;
  }
  stripStandalone(tokens);
  return tokens;
}

// A section, inverted, closing or comment tag alone on its line (only spaces
// or tabs around it) removes that whole line from the output.
function stripStandalone(tokens) {
  const standalone = tokens.map((t, i) => {
    if (!'#^/!'.includes(t.type) || t.type === 'text') return false;
    const prev = tokens[i - 1];
    const next = tokens[i + 1];
    const lineStart = i === 0 || (prev.type === 'text' &&
      /(^|\n)[ \t]*$/.test(prev.value) && (prev.value.includes('\n') || i === 1));
    const lineEnd = next === undefined || (next.type === 'text' && /^[ \t]*(\r?\n|$)/.test(next.value));
    return lineStart && lineEnd;
  });
  tokens.forEach((t, i) => {
    if (!standalone[i]) return;
    const prev = tokens[i - 1];
    const next = tokens[i + 1];
    if (prev) prev.value = prev.value.replace(/[ \t]*$/, '');
    if (next) next.value = next.value.replace(/^[ \t]*(\r?\n|$)/, '');
  });
}

// Nests sections: returns a list of nodes.
function parse(tokens) {
  const root = { children: [] };
  const stack = [root];
  for (const t of tokens) {
    const top = stack[stack.length - 1];
    if (t.type === 'text') {
      if (t.value) top.children.push(t);
    } else if (t.type === '#' || t.type === '^') {
      const node = { ...t, children: [] };
      top.children.push(node);
      stack.push(node);
    } else if (t.type === '/') {
      if (stack.length === 1) throw new RenderError(`line ${t.line}: \`{{/${t.name}}}\` closes no section`);
      if (top.name !== t.name) {
        throw new RenderError(`line ${t.line}: \`{{/${t.name}}}\` closes \`{{${top.type}${top.name}}}\` of line ${top.line}`);
      }
      stack.pop();
    } else if (t.type !== '!') {
      top.children.push(t);
    }
  }
  if (stack.length > 1) {
    const open = stack[stack.length - 1];
    throw new RenderError(`line ${open.line}: section \`{{${open.type}${open.name}}}\` is never closed`);
  }
  return root.children;
}

const hasOwn = (o, k) => o !== null && typeof o === 'object' && Object.prototype.hasOwnProperty.call(o, k);

// The value of a name in the context stack (innermost first), or MISSING.
function lookup(name, stack) {
  if (name === '.') return stack[stack.length - 1];
  const parts = name.split('.');
  for (let i = stack.length - 1; i >= 0; i--) {
    if (!hasOwn(stack[i], parts[0])) continue;
    let value = stack[i][parts[0]];
    for (const part of parts.slice(1)) {
      if (!hasOwn(value, part)) return MISSING;
      value = value[part];
    }
    return value;
  }
  return MISSING;
}

function truthy(value) {
  if (value === MISSING) return false;
  if (Array.isArray(value)) return value.length > 0;
  return Boolean(value);
}

function toText(value) {
  if (value === null || value === undefined) return '';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (s) => s.replace(/[&<>"']/g, (c) => ESCAPES[c]);

function render(nodes, stack, ctx) {
  for (const node of nodes) {
    switch (node.type) {
      case 'text':
        ctx.out.push(node.value);
        break;
      case 'name':
      case '&': {
        const value = lookup(node.name, stack);
        ctx.count++;
        if (value === MISSING) {
          if (ctx.strict) {
            throw new RenderError(`line ${node.line}: no value for \`${node.name}\` (pass it as an option or in \`data\`, or set strict=false)`);
          }
          break;
        }
        ctx.out.push(node.type === 'name' ? escapeHtml(toText(value)) : toText(value));
        break;
      }
      case '#': {
        const value = lookup(node.name, stack);
        if (Array.isArray(value)) {
          for (const item of value) render(node.children, [...stack, item], ctx);
        } else if (truthy(value)) {
          render(node.children, [...stack, value], ctx);
        }
        break;
      }
      case '^':
        if (!truthy(lookup(node.name, stack))) render(node.children, stack, ctx);
        break;
    }
  }
}

function flag(options, key, fallback) {
  if (!Object.prototype.hasOwnProperty.call(options, key)) return fallback;
  const v = options[key];
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new RenderError(`option \`${key}\` must be true or false, not \`${v}\``);
}

function decodeUtf8(bytes) {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new RenderError('the input is not valid UTF-8');
  }
}

function isJson(contentType) {
  return contentType.split(';')[0].trim().toLowerCase() === 'application/json';
}

function run(request) {
  const options = {};
  for (const { key, value } of request.options) options[key] = value;
  const strict = flag(options, 'strict', true);
  const html = flag(options, 'html', false);
  const text = decodeUtf8(request.input);
  let template = text;
  const stack = [options];
  if (isJson(request.contentType)) {
    let doc;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new RenderError(`the input is not valid JSON: ${e.message}`);
    }
    if (!hasOwn(doc, 'template') || typeof doc.template !== 'string') {
      throw new RenderError('JSON input needs a string `template` (and an object `data`)');
    }
    if (hasOwn(doc, 'data') && (doc.data === null || typeof doc.data !== 'object' || Array.isArray(doc.data))) {
      throw new RenderError('`data` must be a JSON object');
    }
    template = doc.template;
    if (hasOwn(doc, 'data')) stack.push(doc.data);
  }
  const ctx = { out: [], count: 0, strict };
  render(parse(tokenize(template)), stack, ctx);
  return {
    output: new TextEncoder().encode(ctx.out.join('')),
    contentType: html ? 'text/html' : 'text/plain',
    itemsProcessed: BigInt(ctx.count),
  };
}

export const plugin = {
  getMetadata() {
    return {
      name: NAME,
      version: VERSION,
      description: 'Renders a mustache-like template with values from options or JSON data.',
      author: 'Warden examples',
    };
  },
  initialize(_config) {
    log('debug', 'template-render ready');
  },
  shutdown() {},
  getStatus() {
    return 'ready';
  },
};

export const processing = {
  process(request) {
    try {
      return run(request);
    } catch (e) {
      if (e instanceof RenderError) throw invalidInput(e.message);
      throw { tag: 'internal', val: String(e && e.stack ? e.stack : e) };
    }
  },
  validate(input) {
    try {
      decodeUtf8(input);
      return true;
    } catch {
      return false;
    }
  },
};
