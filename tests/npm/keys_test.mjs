// keys_test.mjs — API keys through the official openai SDK.
// usage: node keys_test.mjs PORT GOOD_KEY
import OpenAI from 'openai';

const [port, good] = process.argv.slice(2);
const mk = (apiKey) => new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey, maxRetries: 0, timeout: 60_000 });
let fails = 0;
const check = (name, cond, detail = '') => {
	console.log(`${cond ? 'ok  ' : 'FAIL'} ${name}${detail ? ': ' + detail : ''}`);
	if (!cond) fails++;
};
try {
	await mk('sk-wrong-wrong-wrong-wrong').models.list();
	check('a wrong key is refused', false);
} catch (e) {
	check('a wrong key: the SDK raises AuthenticationError (401)', e instanceof OpenAI.AuthenticationError && e.status === 401, `${e.status} ${e.message}`);
}
const models = await mk(good).models.list();
check('the right key lists the model', models.data.length === 1);
const r = await mk(good).chat.completions.create({ model: models.data[0].id, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4 });
check('the right key gets a completion', r.choices.length === 1 && r.usage.completion_tokens >= 1);
console.log(`keys_test: ${fails} failed`);
process.exit(fails ? 1 : 0);
