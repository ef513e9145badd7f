// End-to-end check of edgelm's Ollama API with the official ollama Node.js library, talking over
// the Unix socket through an undici Agent whose connect.socketPath is the socket (the library's
// `fetch` option).
// Usage: EDGELM_SOCKET=/path/to.sock node ollama_client.mjs   (ollama and undici installed from npm)
// Exits non-zero when a check fails.
import { Ollama } from 'ollama';
import { Agent, fetch as undiciFetch } from 'undici';

const socketPath = process.env.EDGELM_SOCKET;
if (!socketPath) {
  console.error('EDGELM_SOCKET is not set');
  process.exit(2);
}
const agent = new Agent({ connect: { socketPath } });
const ollama = new Ollama({ host: 'http://localhost', fetch: (url, init) => undiciFetch(url, { ...init, dispatcher: agent }) });

let failures = 0;
function check(cond, what, detail) {
  if (cond) {
    console.log(`ok   ${what}`);
  } else {
    failures++;
    console.log(`FAIL ${what}: ${JSON.stringify(detail)}`);
  }
}

const version = await ollama.version();
check(typeof version.version === 'string' && /^\d+\.\d+\.\d+/.test(version.version), 'version', version);

const tags = await ollama.list();
const model = tags.models[0]?.name;
check(tags.models.length === 1 && model.endsWith(':latest') && tags.models[0].details.format === 'gguf' && tags.models[0].size > 0,
  'list (/api/tags) names the model name:tag', tags);

const shown = await ollama.show({ model });
check(shown.capabilities.includes('completion') && shown.model_info['general.architecture'] === shown.details.family,
  'show describes the model', { capabilities: shown.capabilities, details: shown.details });

const ps = await ollama.ps();
check(ps.models.length === 1 && ps.models[0].name === model && ps.models[0].size_vram === 0, 'ps lists the loaded model', ps);

const prompt = 'Once upon a time';
const gen = await ollama.generate({ model, prompt, raw: true, options: { temperature: 0, num_predict: 12 } });
check(gen.done === true && typeof gen.response === 'string' && gen.response.length > 0 && gen.eval_count > 0 &&
  gen.prompt_eval_count > 0 && gen.total_duration > 0 && ['stop', 'length'].includes(gen.done_reason) && gen.context === undefined,
  'generate returns text and the statistics (and no context, being raw)', gen);
const templated = await ollama.generate({ model, prompt: 'Hello', system: 'Be brief.', options: { num_predict: 4 } });
check(templated.done === true && Array.isArray(templated.context) && templated.context.length >= templated.prompt_eval_count + templated.eval_count,
  'generate through the chat format returns the context', { context: templated.context?.length, prompt: templated.prompt_eval_count });

let streamed = '';
let last = null;
let parts = 0;
for await (const part of await ollama.generate({ model, prompt, raw: true, stream: true, options: { temperature: 0, num_predict: 12 } })) {
  parts++;
  streamed += part.response;
  last = part;
}
check(parts > 1 && last.done === true && last.eval_count === gen.eval_count, 'generate stream ends with done and the statistics', { parts, last });
check(streamed === gen.response, 'greedy generate stream equals the non-streamed text', { streamed, response: gen.response });

const messages = [{ role: 'system', content: 'You tell short stories.' }, { role: 'user', content: 'Tell me about a cat.' }];
const chat = await ollama.chat({ model: model.replace(/:latest$/, ''), messages, options: { temperature: 0, num_predict: 12 } });
check(chat.done === true && chat.message.role === 'assistant' && typeof chat.message.content === 'string' && chat.eval_count > 0,
  'chat returns an assistant message', chat);
let chatText = '';
let chatParts = 0;
let chatLast = null;
for await (const part of await ollama.chat({ model, messages, stream: true, options: { temperature: 0, num_predict: 12 } })) {
  chatParts++;
  chatText += part.message.content;
  chatLast = part;
}
check(chatParts > 1 && chatLast.done === true && chatLast.done_reason && chatLast.prompt_eval_count > 0, 'chat stream ends with done and the statistics', chatLast);
check(chatText === chat.message.content, 'greedy chat stream equals the non-streamed message', { chatText, content: chat.message.content });

const emb = await ollama.embed({ model, input: ['The cat sat.', 'A dog ran.'] });
const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
check(emb.embeddings.length === 2 && emb.embeddings[0].length > 0 && emb.embeddings.every((v) => Math.abs(norm(v) - 1) < 1e-4) &&
  emb.prompt_eval_count > 0, 'embed gives normalized vectors', { n: emb.embeddings.length, dim: emb.embeddings[0]?.length, norms: emb.embeddings.map(norm) });
const one = await ollama.embed({ model, input: 'The cat sat.' });
check(one.embeddings.length === 1 && one.embeddings[0].every((x, i) => Math.abs(x - emb.embeddings[0][i]) < 1e-5),
  'embed of one string equals its embedding in a list', { dim: one.embeddings[0]?.length });

try {
  await ollama.generate({ model: 'no-such-model', prompt: 'x' });
  check(false, 'unknown model is an error', 'no error');
} catch (e) {
  check(e.name === 'ResponseError' && e.status_code === 404 && /not found/.test(e.error), 'unknown model is a 404 ResponseError', { name: e.name, status: e.status_code, error: e.error });
}
try {
  await ollama.chat({ model, messages: [{ role: 'user', content: 'What is this?', images: ['aGVsbG8='] }] });
  check(false, 'images are refused', 'no error');
} catch (e) {
  check(e.status_code === 400 && /images are not supported/.test(e.error), 'images are refused with a 400', { status: e.status_code, error: e.error });
}

await agent.close();
if (failures > 0) {
  console.log(`${failures} check(s) failed`);
  process.exit(1);
}
console.log('ollama client: all checks passed');
