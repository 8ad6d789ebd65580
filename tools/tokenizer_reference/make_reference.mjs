// Builds the tokenizer test corpus and the reference ids of five Hugging Face tokenizers with
// transformers.js, writing tests/data/tokenizer/hf_corpus.json and hf_<name>.json.
// Run: npm install --ignore-scripts && node make_reference.mjs [shared_dir]
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PreTrainedTokenizer } from '@huggingface/transformers';

const here = path.dirname(fileURLToPath(import.meta.url));
const shared = process.argv[2] ?? path.join(here, '../../../shared');
const outDir = path.join(here, '../../tests/data/tokenizer');
const names = ['llama2', 'llama3', 'qwen3', 'gemma3', 'gptoss'];

// Deterministic PRNG (mulberry32) so the corpus is the same on every run.
let seed = 0x5eed1234;
function rand() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rand() * a.length)];
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));

const sentences = [
  'Hello world', ' Hello world', 'hello World!', 'HELLO WORLD', 'The quick brown fox jumps over the lazy dog.',
  'Der schnelle braune Fuchs springt über den faulen Hund. Äpfel, Öl, Übermut, Straße.',
  'Le cœur déçu mais l\'âme plutôt naïve, Louÿs rêva de crapaüter en canoë au delà des îles.',
  'El pingüino Wenceslao hizo kilómetros bajo exhaustiva lluvia y frío, añoraba a su querido cachorro.',
  'Tiếng Việt có dấu: Người ta thường nói rằng học tiếng Việt rất khó.',
  'Съешь же ещё этих мягких французских булок, да выпей чаю.', 'Γαζέες καὶ μυρτιὲς δὲν θὰ βρῶ πιὰ στὸ χρυσαφὶ ξέφωτο.',
  'نص حكيم له سر قاطع وذو شأن عظيم مكتوب على ثوب أخضر ومغلف بجلد أزرق', 'עטלף אבק נס דרך מזגן שהתפוצץ כי חם',
  'ऋषियों को सताने वाले दुष्ट राक्षसों के राजा रावण का सर्वनाश करने वाले', 'เป็นมนุษย์สุดประเสริฐเลิศคุณค่า',
  'ខ្ញុំអាចញ៉ាំកញ្ចក់បាន ដោយគ្មានបញ្ហា', '我能吞下玻璃而不伤身体。', '私はガラスを食べられます。それは私を傷つけません。',
  '나는 유리를 먹을 수 있어요. 그래도 아프지 않아요', 'მინას ვჭამ და არა მტკივა.', 'Կրնամ ապակի ուտել և ինծի անհանգիստ չըներ։',
  'நான் கண்ணாடி சாப்பிடுவேன், அதனால் எனக்கு ஒரு கேடும் வராது.', 'আমি কাঁচ খেতে পারি, তাতে আমার কোনো ক্ষতি হয় না।',
  'İstanbul\'da ılık bir gün; IĞDIR ışık.', 'Zażółć gęślą jaźń', 'Příliš žluťoučký kůň úpěl ďábelské ódy.',
  'Ἐν ἀρχῇ ἦν ὁ λόγος', 'ﬁnance ﬂow Ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ', 'ǅungla Ǉubljana', 'µ mu Å angstrom K kelvin',
];
const code = [
  'int main(int argc, char** argv) {\n  return 0;\n}\n', 'def f(x):\n    return x ** 2  # square\n',
  'for (let i = 0; i < n; ++i) { sum += a[i]; }', '{"key": [1, 2.5, -3e10, true, null], "s": "a\\"b"}',
  '<div class="x">&nbsp;<b>bold</b></div>', 'if [ -f "$HOME/.bashrc" ]; then . ~/.bashrc; fi',
  'SELECT id, name FROM users WHERE age >= 18 ORDER BY name;', '\tif (x) {\n\t\ty = 1;\n\t}\n',
  '    x = [i for i in range(10) if i % 2 == 0]', 'std::vector<std::unique_ptr<Foo>> v; v.emplace_back();',
  '#include <stdio.h>\n', 'a+=b; c-=d; e*=f; g/=h; i%=j; k<<=1; l>>=2;', '$x = @{ "a" = 1 }; Write-Host $x',
  'fn main() { println!("{:?}", vec![1, 2, 3]); }', '// TODO: fix this\n/* block */', 'https://example.com/a?b=c&d=e#f',
];
const emoji = [
  '👨‍👩‍👧‍👦', '🏳️‍🌈', '👍🏽', '🇩🇪🇯🇵', '❤️', '☺︎', '🧑🏿‍💻', '👩‍❤️‍💋‍👨', '🤷‍♀️', '1️⃣', '🦙', '😀😃😄', '🫠',
];
const contractions = [
  "I'm", "I'M", "you're", "YOU'RE", "we'Ve", "they'LL", "he'D", "it'S", "don't", "DON'T", "'s", "'S", "'Re", "'ve",
  "'lL", "ſ's", "'ſ", "can't've", "y'all'd've", "O'Neil's", "rock 'n' roll", "‘quoted’", "’s",
];
const specials = [
  '<|im_end|>', '<|im_start|>user', '<|im_end', 'im_end|>', '<s>', '</s>', '<s >', '<unk>', '<|begin_of_text|>',
  '<|eot_id|>', '<|endoftext|>', '<bos>', '<eos>', '<start_of_turn>user', '<end_of_turn>', '<0x41>', '<0xZZ>', '[CLS]',
  '<|start_header_id|>', '<|reserved_special_token_5|>', '<think>', '</think>', '<|return|>', '<|channel|>', '<<SYS>>',
  '[INST]', '<|image_pad|>', '<pad>', '<mask>',
];
const ws = [' ', '  ', '   ', '\t', '\n', '\r\n', '\r', '\n\n', ' \n', '\n ', '\t\t', '\u00a0', '\u3000', '\u2009', '\u200b', '\v', '\f'];
const nfdTexts = ['e\u0301', 'Cafe\u0301', 'n\u0303o', 'A\u030a', '\u1100\u1161\u11a8', 'o\u0308\u0304', 'e\u0323\u0302', 'Ω', 'Å'];
const pool = [...sentences.join('').split(''), ...'0123456789!@#$%^&*()_+-=[]{};:\'",.<>/?\\|`~', ' ', ' ', '\n', '\t'];

const texts = [];
const add = (t) => texts.push({ t });
const addBytes = (bytes) => texts.push({ hex: Buffer.from(bytes).toString('hex') });

add('');
for (const s of [...sentences, ...code, ...emoji, ...contractions, ...specials, ...ws, ...nfdTexts]) add(s);
for (const s of sentences) { add(s.toLowerCase()); add(s.toUpperCase()); add(' ' + s); add(s + '\n'); }
// Digit runs, with and without separators and in other scripts.
for (let n = 1; n <= 24; ++n) { add('7'.repeat(n)); add('1234567890'.repeat(3).slice(0, n)); add(' ' + '3'.repeat(n) + ' apples'); }
for (let i = 0; i < 60; ++i) {
  const num = String(int(0, 1e9)) + pick(['', '.', ',', '.5', 'e-3', '%', ' 000']) + String(int(0, 99999));
  add(pick(['', 'x', ' ', '$', 'v', '#']) + num);
}
add('٠١٢٣٤٥٦٧٨٩ ۱۲۳ ０１２３ ①②③ ⅷ ½ ¾ ²³');
// Whitespace runs and mixed newlines.
for (let i = 0; i < 120; ++i) {
  let s = '';
  const parts = int(1, 6);
  for (let k = 0; k < parts; ++k) s += pick(ws).repeat(int(1, 5)) + pick(['', 'word', 'x', '1', '.', 'Hi', '}', 'αβ']);
  add(s);
}
// Odd-case contractions in context.
for (let i = 0; i < 80; ++i) add(pick(['I', 'we', 'THEY', 'You', 'it']) + pick(contractions) + pick([' go', '', '.', ' ', "'s"]));
// Special-token look-alikes embedded in text.
for (let i = 0; i < 120; ++i) add(pick(['', 'Hi ', 'text', ' ', '\n']) + pick(specials) + pick(['', ' there', 'x', '\n', pick(specials)]));
// Emoji in text.
for (let i = 0; i < 80; ++i) add(pick(['I ', 'ok', '', ' ']) + pick(emoji) + pick(['', ' yes', pick(emoji), '!', '\n']));
// NFD and combining marks.
for (let i = 0; i < 40; ++i) add(pick(['', 'x', ' ']) + pick(nfdTexts) + pick(['', ' ', 'z', pick(nfdTexts)]));
// Code fragments with random indentation.
for (let i = 0; i < 80; ++i) add(' '.repeat(int(0, 8)) + pick(code).slice(0, int(5, 60)));
// Random mixtures of everything.
while (texts.length < 2100) {
  let s = '';
  const len = int(1, 60);
  for (let k = 0; k < len; ++k) {
    const r = rand();
    if (r < 0.8) s += pick(pool);
    else if (r < 0.85) s += pick(emoji);
    else if (r < 0.9) s += pick(ws);
    else if (r < 0.95) s += pick(contractions);
    else s += String(int(0, 99999));
  }
  add(s);
}
// Ill-formed UTF-8: lone continuation bytes, truncated sequences, overlongs, surrogates, > U+10FFFF.
const bad = [
  [0x80], [0xc3], [0xe2, 0x82], [0xf0, 0x9f, 0x98], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80],
  [0xff], [0xfe, 0xfe], [0x41, 0x80, 0x42], [0x68, 0x69, 0xe2, 0x28, 0xa1], [0xf8, 0x88, 0x80, 0x80, 0x80],
];
for (const b of bad) { addBytes(b); addBytes([...Buffer.from('abc '), ...b, ...Buffer.from(' def')]); }

const corpus = texts.map((x) => (x.hex !== undefined ? new TextDecoder().decode(Buffer.from(x.hex, 'hex')) : x.t));
const version = JSON.parse(fs.readFileSync(path.join(here, 'node_modules/@huggingface/transformers/package.json'))).version;
fs.writeFileSync(path.join(outDir, 'hf_corpus.json'), JSON.stringify({
  schema: 'origami-tokenizer-corpus/1',
  note: 'Texts for the hf_<name>.json reference ids; "hex" entries are raw (possibly ill-formed) UTF-8 bytes.',
  texts,
}) + '\n');

for (const name of names) {
  const dir = path.join(shared, 'hf-tokenizers', name);
  const tj = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
  const tok = new PreTrainedTokenizer(tj, cfg);
  const ids = [], roundtrip = [];
  for (const text of corpus) {
    const e = tok.encode(text, { add_special_tokens: false });
    ids.push(e);
    const d = e.length ? tok.decode(e, { skip_special_tokens: false, clean_up_tokenization_spaces: false }) : '';
    roundtrip.push(d === text ? 1 : 0);
  }
  const withBos = tok.encode('Hello', { add_special_tokens: true });
  fs.writeFileSync(path.join(outDir, `hf_${name}.json`), JSON.stringify({
    schema: 'origami-tokenizer-reference/1',
    tokenizer: `hf-tokenizers/${name}`,
    reference: `@huggingface/transformers ${version}: encode(text, {add_special_tokens: false}); ` +
      'roundtrip = decode(ids, {skip_special_tokens: false, clean_up_tokenization_spaces: false}) === text',
    hello_with_special: withBos,
    ids: ids.map((a) => a.join(' ')),
    roundtrip: roundtrip.join(''),
  }) + '\n');
  console.log(name, corpus.length, 'texts,', roundtrip.filter((x) => x).length, 'round-trip');
}
