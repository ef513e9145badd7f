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

// format and tools on a second daemon serving tinydoc-q8_0 (EDGELM_STRUCTURED_SOCKET), sampled at
// temperature 1; answers and calls checked here, by hand, against their schemas.
const structuredSocket = process.env.EDGELM_STRUCTURED_SOCKET;
if (structuredSocket) {
  const sagent = new Agent({ connect: { socketPath: structuredSocket } });
  const sollama = new Ollama({ host: 'http://localhost', fetch: (url, init) => undiciFetch(url, { ...init, dispatcher: sagent }) });
  const smodel = (await sollama.list()).models[0]?.name;
  const schema = {
    type: 'object',
    properties: { name: { type: 'string', maxLength: 20 }, age: { type: 'integer', minimum: 0, maximum: 120 } },
    required: ['name', 'age'],
    additionalProperties: false,
  };
  const validPerson = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) &&
    Object.keys(v).every((k) => ['name', 'age'].includes(k)) && typeof v.name === 'string' && [...v.name].length <= 20 &&
    Number.isInteger(v.age) && v.age >= 0 && v.age <= 120;
  const tools = [{
    type: 'function',
    function: {
      name: 'get_weather', description: 'Weather in a city',
      parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 24 } }, required: ['city'], additionalProperties: false },
    },
  }];
  const validCall = (c) => c?.function?.name === 'get_weather' && typeof c.function.arguments === 'object' &&
    Object.keys(c.function.arguments).every((k) => k === 'city') && typeof c.function.arguments.city === 'string' &&
    [...c.function.arguments.city].length <= 24;
  for (const seed of [1, 2]) {
    const options = { temperature: 1, seed, num_predict: 200 };
    const res = await sollama.chat({ model: smodel, messages: [{ role: 'user', content: 'Describe a person.' }], format: schema, options });
    let person = null;
    try { person = JSON.parse(res.message.content); } catch { /* checked below */ }
    check(res.done_reason !== 'stop' || validPerson(person), `chat format schema (seed ${seed}) is valid against it`, res.message);
    let calls = [];
    let last = null;
    for await (const part of await sollama.chat({ model: smodel, messages: [{ role: 'user', content: 'Weather in Paris?' }], tools,
      tool_choice: 'required', stream: true, options })) {
      calls = calls.concat(part.message.tool_calls ?? []);
      last = part;
    }
    check(last.done === true && (last.done_reason !== 'stop' || (calls.length === 1 && validCall(calls[0]))),
      `streamed tool call (seed ${seed}) has arguments valid against the parameters`, { calls, last });
  }
  const auto = await sollama.chat({ model: smodel, messages: [{ role: 'user', content: 'Weather in Paris?' }], tools, options: { num_predict: 16 } });
  check(auto.done === true && (auto.message.tool_calls ?? []).every(validCall), 'tools in auto mode: text or valid calls', auto.message);
  await sagent.close();
}

if (failures > 0) {
  console.log(`${failures} check(s) failed`);
  process.exit(1);
}
console.log('ollama client: all checks passed');
