// End-to-end check of edgelm's daemon with the official OpenAI Node.js client, talking over the
// Unix socket through an undici Agent whose connect.socketPath is the socket.
// Usage: EDGELM_SOCKET=/path/to.sock node openai_client.mjs   (openai and undici installed from npm)
// Exits non-zero on the first failed check.
import OpenAI from 'openai';
import { Agent, fetch as undiciFetch } from 'undici';

const socketPath = process.env.EDGELM_SOCKET;
if (!socketPath) {
  console.error('EDGELM_SOCKET is not set');
  process.exit(2);
}
const agent = new Agent({ connect: { socketPath } });
const client = new OpenAI({
  baseURL: 'http://localhost/v1',
  apiKey: 'not-needed', // the daemon checks the peer's uid, not keys
  fetch: (url, init) => undiciFetch(url, { ...init, dispatcher: agent }),
  maxRetries: 0,
});

let failures = 0;
function check(cond, what, detail) {
  if (cond) {
    console.log(`ok   ${what}`);
  } else {
    failures++;
    console.log(`FAIL ${what}: ${JSON.stringify(detail)}`);
  }
}

const models = await client.models.list();
const model = models.data[0]?.id;
check(typeof model === 'string' && model.endsWith('.gguf'), 'models.list names the model', models.data);

const comp = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 12, temperature: 0 });
check(comp.object === 'text_completion' && typeof comp.choices[0].text === 'string' && comp.choices[0].text.length > 0,
  'completions.create returns text', comp);
check(comp.usage.completion_tokens > 0 && comp.usage.total_tokens === comp.usage.prompt_tokens + comp.usage.completion_tokens,
  'completions usage adds up', comp.usage);
check(['stop', 'length'].includes(comp.choices[0].finish_reason), 'completions finish_reason', comp.choices[0]);

let streamed = '';
let finish = null;
let chunks = 0;
const cs = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 12, temperature: 0, stream: true });
for await (const chunk of cs) {
  chunks++;
  streamed += chunk.choices[0]?.text ?? '';
  finish = chunk.choices[0]?.finish_reason ?? finish;
}
check(chunks > 1 && finish !== null, 'completions stream has chunks and a finish_reason', { chunks, finish });
check(streamed === comp.choices[0].text, 'greedy stream text equals the non-streamed text', { streamed, text: comp.choices[0].text });

const messages = [{ role: 'system', content: 'You tell short stories.' }, { role: 'user', content: 'Tell me about a cat.' }];
const chat = await client.chat.completions.create({ model, messages, max_tokens: 12, temperature: 0 });
check(chat.object === 'chat.completion' && chat.choices[0].message.role === 'assistant' && typeof chat.choices[0].message.content === 'string',
  'chat.completions.create returns an assistant message', chat);
check(chat.usage.prompt_tokens > 0, 'chat usage counts the prompt', chat.usage);

let chatText = '';
let role = null;
finish = null;
const stream = await client.chat.completions.create({ model, messages, max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true } });
let usage = null;
for await (const chunk of stream) {
  const d = chunk.choices[0]?.delta;
  if (d?.role) role = d.role;
  chatText += d?.content ?? '';
  finish = chunk.choices[0]?.finish_reason ?? finish;
  if (chunk.usage) usage = chunk.usage;
}
check(role === 'assistant' && finish !== null, 'chat stream has the role and a finish_reason', { role, finish });
check(chatText === chat.choices[0].message.content, 'greedy chat stream equals the non-streamed message', { chatText, content: chat.choices[0].message.content });
check(usage !== null && usage.completion_tokens > 0, 'chat stream usage chunk', usage);

try {
  await client.completions.create({ model: 'no-such-model', prompt: 'x', max_tokens: 1 });
  check(false, 'unknown model is an error', 'no error');
} catch (e) {
  check(e instanceof OpenAI.NotFoundError && e.status === 404, 'unknown model is a 404 NotFoundError', { status: e.status, message: e.message });
}
try {
  await client.completions.create({ model, prompt: 'x', max_tokens: 1e9 });
  check(false, 'max_tokens over the cap is an error', 'no error');
} catch (e) {
  check(e instanceof OpenAI.BadRequestError && e.status === 400, 'max_tokens over the cap is a 400 BadRequestError', { status: e.status, message: e.message });
}

// ---- embeddings (issue 16): the client asks for base64 unless told otherwise and decodes it ----
{
  const embs = await client.embeddings.create({ model, input: ['The cat sat.', 'A dog ran.'] });
  const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  check(embs.data.length === 2 && embs.data.every((d, i) => d.index === i && d.embedding.length > 0 && Math.abs(norm(d.embedding) - 1) < 1e-4) &&
    embs.usage.prompt_tokens > 0, 'embeddings.create gives normalized vectors', { n: embs.data.length, usage: embs.usage });
  const plain = await client.embeddings.create({ model, input: 'The cat sat.', encoding_format: 'float' });
  check(plain.data[0].embedding.every((x, i) => Math.abs(x - embs.data[0].embedding[i]) < 1e-6),
    'embeddings as floats equal the base64 ones', { dim: plain.data[0].embedding.length });
  try {
    await client.embeddings.create({ model, input: 'x', dimensions: 3 });
    check(false, 'dimensions other than the model\'s is an error', 'no error');
  } catch (e) {
    check(e instanceof OpenAI.BadRequestError && e.status === 400, 'dimensions other than the model\'s is a 400 BadRequestError', { status: e.status, message: e.message });
  }
}
// ---- end of embeddings ----

await agent.close();

// Structured output on a second daemon serving tinydoc-q8_0 (EDGELM_STRUCTURED_SOCKET): a
// json_schema answer, a forced tool call and a streamed tool call, sampled at temperature 1.
const structuredSocket = process.env.EDGELM_STRUCTURED_SOCKET;
if (structuredSocket) {
  const sagent = new Agent({ connect: { socketPath: structuredSocket } });
  const sclient = new OpenAI({
    baseURL: 'http://localhost/v1', apiKey: 'not-needed', maxRetries: 0,
    fetch: (url, init) => undiciFetch(url, { ...init, dispatcher: sagent }),
  });
  const smodel = (await sclient.models.list()).data[0]?.id;
  const schema = {
    type: 'object',
    properties: {
      name: { type: 'string', maxLength: 20 },
      age: { type: 'integer', minimum: 0, maximum: 120 },
      pets: { type: 'array', items: { enum: ['cat', 'dog', 'fish'] }, maxItems: 3 },
    },
    required: ['name', 'age', 'pets'],
    additionalProperties: false,
  };
  // Checked here, by hand, against the schema above.
  const validPerson = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) &&
    Object.keys(v).every((k) => ['name', 'age', 'pets'].includes(k)) &&
    typeof v.name === 'string' && [...v.name].length <= 20 &&
    Number.isInteger(v.age) && v.age >= 0 && v.age <= 120 &&
    Array.isArray(v.pets) && v.pets.length <= 3 && v.pets.every((p) => ['cat', 'dog', 'fish'].includes(p));
  for (const seed of [1, 2, 3]) {
    const r = await sclient.chat.completions.create({
      model: smodel, messages: [{ role: 'user', content: 'Describe a person.' }], temperature: 1, seed, max_tokens: 200,
      response_format: { type: 'json_schema', json_schema: { name: 'person', strict: true, schema } },
    });
    const c = r.choices[0];
    let parsed = null;
    try { parsed = JSON.parse(c.message.content); } catch { /* reported below */ }
    // Every part of the schema is bounded, so the answer ends well within max_tokens.
    check(c.finish_reason === 'stop' && validPerson(parsed), `json_schema answer (seed ${seed}) parses and validates`, c);
  }

  const tools = [{
    type: 'function',
    function: {
      name: 'get_weather', description: 'The weather in a city',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string', maxLength: 24 }, days: { type: 'integer', minimum: 1, maximum: 7 } },
        required: ['city'], additionalProperties: false,
      },
    },
  }];
  const validArgs = (a) => a !== null && typeof a === 'object' && Object.keys(a).every((k) => ['city', 'days'].includes(k)) &&
    typeof a.city === 'string' && [...a.city].length <= 24 && (a.days === undefined || (Number.isInteger(a.days) && a.days >= 1 && a.days <= 7));
  const ask = [{ role: 'user', content: 'What is the weather in Paris?' }];
  const forced = await sclient.chat.completions.create({
    model: smodel, messages: ask, tools, temperature: 1, seed: 4, max_tokens: 200,
    tool_choice: { type: 'function', function: { name: 'get_weather' } },
  });
  const fc = forced.choices[0];
  const call = fc.message.tool_calls?.[0];
  let args = null;
  try { args = JSON.parse(call.function.arguments); } catch { /* reported below */ }
  check(fc.finish_reason === 'tool_calls' && fc.message.content === null && call?.type === 'function' && call.id.startsWith('call_') &&
    call.function.name === 'get_weather' && validArgs(args), 'forced tool call with valid arguments', fc);

  // The result fed back through the template, then a streamed call.
  const back = await sclient.chat.completions.create({
    model: smodel, tools, tool_choice: 'none', max_tokens: 8,
    messages: [...ask, fc.message, { role: 'tool', tool_call_id: call?.id ?? 'x', content: '{"temp": 21}' }],
  });
  check(typeof back.choices[0].message.content === 'string', 'a tool result is accepted back', back.choices[0]);

  const st = await sclient.chat.completions.create({
    model: smodel, messages: ask, tools, tool_choice: 'required', temperature: 1, seed: 5, max_tokens: 200, stream: true,
  });
  let first = null, sargs = '', deltas = 0, sfinish = null;
  for await (const chunk of st) {
    const tc = chunk.choices[0]?.delta?.tool_calls?.[0];
    if (tc) {
      deltas++;
      if (first === null) first = tc;
      sargs += tc.function?.arguments ?? '';
    }
    sfinish = chunk.choices[0]?.finish_reason ?? sfinish;
  }
  let sparsed = null;
  try { sparsed = JSON.parse(sargs); } catch { /* reported below */ }
  check(first?.id?.startsWith('call_') && first.type === 'function' && first.function.name === 'get_weather' && deltas > 2 &&
    sfinish === 'tool_calls' && validArgs(sparsed), 'streamed tool call: id/type/name first, then arguments fragments', { first, sargs, deltas, sfinish });

  try {
    await sclient.chat.completions.create({ model: smodel, messages: ask, response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', pattern: '^a' } } } });
    check(false, 'an unsupported schema keyword is refused', 'no error');
  } catch (e) {
    check(e instanceof OpenAI.BadRequestError && /pattern/.test(e.message), 'an unsupported schema keyword is a 400 naming it', { status: e.status, message: e.message });
  }
  await sagent.close();
}

if (failures > 0) {
  console.log(`${failures} check(s) failed`);
  process.exit(1);
}
console.log('openai client: all checks passed');
