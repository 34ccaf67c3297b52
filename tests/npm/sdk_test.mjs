// sdk_test.mjs — the nextcard HTTP API through the official openai SDK.
// usage: node sdk_test.mjs PORT [MODEL_DIR]
// Streams a chat completion and checks the text arrives in several chunks and
// finishes; also models.list, a greedy completion against the reference
// sample, seeded streaming, and a 400 surfacing as the SDK's BadRequestError.
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';

const port = process.argv[2];
const modelDir = process.argv[3] || '../../assets/fortune-13m';
if (!port) {
	console.error('sdk_test: usage: node sdk_test.mjs PORT [MODEL_DIR]');
	process.exit(2);
}

const client = new OpenAI({
	baseURL: `http://127.0.0.1:${port}/v1`,
	apiKey: 'dummy',
	maxRetries: 0,
	timeout: 60_000,
});
let fails = 0;
const check = (name, cond, detail = '') => {
	console.log(`${cond ? 'ok  ' : 'FAIL'} ${name}${detail ? ': ' + detail : ''}`);
	if (!cond) fails++;
};

const models = await client.models.list();
const ids = models.data.map((m) => m.id);
check('models.list', ids.length === 1, ids.join(','));
const model = ids[0];

// streamed chat: text in chunks, a finish reason, usage at the end
const messages = [
	{ role: 'system', content: 'You tell fortunes.' },
	{ role: 'user', content: 'What does the future hold?' },
];
const t0 = performance.now();
let ttft = null;
const stream = await client.chat.completions.create({
	model, messages, max_tokens: 32, temperature: 0, stream: true,
	stream_options: { include_usage: true },
});
let text = '', chunks = 0, finish = null, usage = null, role = null;
for await (const chunk of stream) {
	if (chunk.usage) usage = chunk.usage;
	const c = chunk.choices[0];
	if (!c) continue;
	if (c.delta.role) role = c.delta.role;
	if (c.delta.content) {
		if (ttft === null) ttft = performance.now() - t0;
		text += c.delta.content;
		chunks++;
	}
	if (c.finish_reason) finish = c.finish_reason;
}
check('chat stream: role assistant', role === 'assistant');
check('chat stream: text in several chunks', chunks > 3 && text.length > 0,
	`${chunks} chunks, ${JSON.stringify(text)}`);
check('chat stream: finished', finish === 'stop' || finish === 'length', `finish_reason ${finish}`);
check('chat stream: usage', usage && usage.completion_tokens > 0 &&
	usage.total_tokens === usage.prompt_tokens + usage.completion_tokens, JSON.stringify(usage));
console.log(`info time to first content chunk ${ttft?.toFixed(1)} ms`);

// the same request unstreamed gives the same text
const whole = await client.chat.completions.create({ model, messages, max_tokens: 32, temperature: 0 });
check('chat: unstreamed content equals the streamed text',
	whole.choices[0].message.content === text && whole.object === 'chat.completion');

// greedy completion reproduces the transformers reference sample
const ref = JSON.parse(readFileSync(`${modelDir}/reference/reference.json`, 'utf8')).samples[0];
const cmpl = await client.completions.create({
	model, prompt: ref.prompt, temperature: 0, max_tokens: ref.greedy_ids.length,
});
check('completions: greedy text equals the reference', cmpl.choices[0].text === ref.greedy_text);

// seeded sampling streamed twice: same text
const seeded = async () => {
	let s = '';
	const st = await client.completions.create({
		model, prompt: ref.prompt, temperature: 0.9, top_p: 0.95, seed: 7, max_tokens: 20, stream: true,
	});
	for await (const ch of st) s += ch.choices[0]?.text ?? '';
	return s;
};
const a = await seeded(), b = await seeded();
check('completions: seeded stream reproducible', a.length > 0 && a === b, JSON.stringify(a));

// errors come back as the SDK's typed errors with the OpenAI error body
try {
	await client.chat.completions.create({ model, messages, n: 2 });
	check('n = 2 refused', false, 'no error');
} catch (e) {
	check('n = 2 refused with BadRequestError', e instanceof OpenAI.BadRequestError && e.status === 400 &&
		e.param === 'n', `${e.status} ${e.message}`);
}
try {
	await client.completions.create({ model: 'no-such-model', prompt: 'x' });
	check('unknown model refused', false, 'no error');
} catch (e) {
	check('unknown model refused with NotFoundError', e instanceof OpenAI.NotFoundError, `${e.status}`);
}

console.log(`sdk_test: ${fails} failed`);
process.exit(fails ? 1 : 0);
