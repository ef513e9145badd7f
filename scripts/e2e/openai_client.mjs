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
if (failures > 0) {
  console.log(`${failures} check(s) failed`);
  process.exit(1);
}
console.log('openai client: all checks passed');
