// tools_test.mjs — tool calling and reasoning through the official openai SDK
// against `nextcard http --script-output` (tests/data/template/script.json:
// the texts the server says in turn, so the conversation is scripted while
// the card still runs every request).
// usage: node tools_test.mjs PORT
import OpenAI from 'openai';

const port = process.argv[2];
const client = new OpenAI({
	baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'dummy', maxRetries: 0, timeout: 60_000,
});
let fails = 0;
const check = (name, cond, detail = '') => {
	console.log(`${cond ? 'ok  ' : 'FAIL'} ${name}${detail ? ': ' + detail : ''}`);
	if (!cond) fails++;
};
const model = (await client.models.list()).data[0].id;
const tools = [{
	type: 'function',
	function: {
		name: 'get_weather', description: 'Current weather for a city.',
		parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } }, required: ['city'] },
	},
}];

// 1. a tool-calling round trip
const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
const r1 = await client.chat.completions.create({ model, messages, tools, max_tokens: 200 });
const m1 = r1.choices[0].message;
check('turn 1: finish_reason tool_calls', r1.choices[0].finish_reason === 'tool_calls', r1.choices[0].finish_reason);
check('turn 1: one call to get_weather', m1.tool_calls?.length === 1 && m1.tool_calls[0].function.name === 'get_weather' && m1.tool_calls[0].type === 'function');
const args = JSON.parse(m1.tool_calls[0].function.arguments);
check('turn 1: arguments are a JSON string of the object', args.city === 'Paris' && args.unit === 'celsius', m1.tool_calls[0].function.arguments);
check('turn 1: content null, reasoning_content separate', m1.content === null &&
	m1.reasoning_content === 'The user wants the weather in Paris; I have a tool for that.', JSON.stringify(m1.reasoning_content));
messages.push(m1);
messages.push({ role: 'tool', tool_call_id: m1.tool_calls[0].id, content: JSON.stringify({ temp: 21, sky: 'sunny' }) });
const r2 = await client.chat.completions.create({ model, messages, tools, max_tokens: 200 });
check('turn 2: the answer as content', r2.choices[0].message.content === 'It is 21 °C and sunny in Paris.' &&
	r2.choices[0].finish_reason === 'stop' && !r2.choices[0].message.tool_calls, r2.choices[0].message.content);

// 2. streamed reasoning: reasoning_content deltas, then content deltas
const s3 = await client.chat.completions.create({
	model, messages: [{ role: 'user', content: 'What is 2 + 2?' }], max_tokens: 200, stream: true,
});
let reasoning = '', content = '', rchunks = 0, cchunks = 0, contentFirst = -1, lastReason = -1, i = 0, fin = null;
for await (const ch of s3) {
	const d = ch.choices[0]?.delta ?? {};
	if (d.reasoning_content) { reasoning += d.reasoning_content; rchunks++; lastReason = i; }
	if (d.content) { content += d.content; cchunks++; if (contentFirst < 0) contentFirst = i; }
	if (ch.choices[0]?.finish_reason) fin = ch.choices[0].finish_reason;
	i++;
}
check('streamed reasoning in several chunks', reasoning === 'Two plus two.\nThat is four.' && rchunks > 3, `${rchunks} chunks ${JSON.stringify(reasoning)}`);
check('streamed content after the reasoning', content === 'The answer is 4.' && contentFirst > lastReason && fin === 'stop', JSON.stringify(content));

// 3. a streamed tool call through the SDK's stream helper
const runner = client.chat.completions.stream({
	model, messages: [{ role: 'user', content: 'Weather in Zürich for two days?' }], tools, max_tokens: 200,
});
const final = await runner.finalChatCompletion();
const c4 = final.choices[0];
check('streamed tool call assembled by the SDK', c4.finish_reason === 'tool_calls' && c4.message.tool_calls?.length === 1 &&
	JSON.parse(c4.message.tool_calls[0].function.arguments).city === 'Zürich', JSON.stringify(c4.message.tool_calls));

// 4. a malformed call comes back as text, and is counted
const r5 = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Go.' }], tools, max_tokens: 200 });
check('malformed tool JSON stays text', r5.choices[0].message.content === '<tool_call>{not json}</tool_call> Sorry.' &&
	r5.choices[0].finish_reason === 'stop', r5.choices[0].message.content);
const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
check('/metrics counts it', /^nextcard_tool_calls_malformed_total 1$/m.test(metrics), metrics.split("\n").filter((l) => l.startsWith("nextcard_tool")).join(" "));

console.log(`tools_test: ${fails} failed`);
process.exit(fails ? 1 : 0);
