// SPDX-License-Identifier: BSD-2-Clause
//
// Real-browser test of an SVG flame graph written by flamegraph__encode_svg():
// opens it in headless Chromium (/usr/bin/chromium through playwright-core, no
// browser download), then checks what a person would do with it:
//   1. the page loads with no script error and makes no network request;
//   2. clicking frame NAME zooms: its rect fills the plot width, its ancestors
//      stay (full width, faded), a frame outside its subtree is hidden;
//   3. "Reset Zoom" restores every frame's original geometry;
//   4. searching NAME through the "Search" control (a prompt) highlights every
//      drawn frame whose name matches and shows "Matched: P%", P within the
//      tolerance of the expected percent; search(term) returns the same.
//
// Usage:
//   node flamegraph.test.mjs FILE.svg --zoom NAME --search REGEX --expect-percent P
//        [--tolerance T] [--screenshot OUT.png]
// Exit: 0 pass, 1 fail, 77 skipped (no /usr/bin/chromium and CI unset).

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SKIP = 77;

function usage(msg) {
	console.error(`flamegraph.test: ${msg}`);
	console.error(
		'usage: node flamegraph.test.mjs FILE.svg --zoom NAME --search REGEX ' +
			'--expect-percent P [--tolerance T] [--screenshot OUT.png]'
	);
	process.exit(2);
}

function parseArgs(argv) {
	const a = { tolerance: 0.051 };
	for (let i = 0; i < argv.length; i++) {
		const k = argv[i];
		const val = () => {
			if (i + 1 >= argv.length) usage(`${k} needs a value`);
			return argv[++i];
		};
		if (k === '--zoom') a.zoom = val();
		else if (k === '--search') a.search = val();
		else if (k === '--expect-percent') a.expect = Number(val());
		else if (k === '--tolerance') a.tolerance = Number(val());
		else if (k === '--screenshot') a.screenshot = val();
		else if (k.startsWith('--')) usage(`unknown option ${k}`);
		else if (!a.file) a.file = k;
		else usage(`unexpected argument ${k}`);
	}
	if (!a.file) usage('missing FILE.svg');
	if (!a.zoom || !a.search || a.expect === undefined) usage('--zoom, --search and --expect-percent are required');
	if (!Number.isFinite(a.expect) || !Number.isFinite(a.tolerance)) usage('percent and tolerance must be numbers');
	return a;
}

let failures = 0;
const t0 = Date.now();
function check(cond, msg) {
	if (process.env.FG_TEST_TIMING) msg += ` [${Date.now() - t0} ms]`;
	if (cond) {
		console.log(`ok   ${msg}`);
	} else {
		console.log(`FAIL ${msg}`);
		failures++;
	}
	return cond;
}

const args = parseArgs(process.argv.slice(2));
if (!existsSync(args.file)) usage(`${args.file}: no such file`);

if (!existsSync(CHROMIUM)) {
	const msg = `${CHROMIUM} not found (install the Debian package chromium)`;
	if (process.env.CI) {
		console.error(`FAIL ${msg}`);
		process.exit(1);
	}
	console.log(`SKIP ${msg}`);
	process.exit(SKIP);
}

let chromium;
try {
	({ chromium } = await import('playwright-core'));
} catch (e) {
	console.error(`FAIL playwright-core is not installed: run \`npm ci --prefix tests/browser\` (${e.message})`);
	process.exit(1);
}

const browser = await chromium.launch({
	executablePath: CHROMIUM,
	headless: true,
	args: [
		'--no-sandbox',
		'--disable-gpu',
		'--disable-quic',
		'--no-first-run',
		'--disable-background-networking',
		'--disable-component-update',
		'--disable-sync',
	],
});

try {
	const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
	const errors = [];
	const external = [];
	page.on('pageerror', (e) => errors.push(e.message));
	page.on('console', (m) => {
		if (m.type() === 'error') errors.push(m.text());
	});
	page.on('request', (r) => {
		if (!/^(file|data|about):/.test(r.url())) external.push(r.url());
	});

	const url = pathToFileURL(resolve(args.file)).href;
	await page.goto(url, { waitUntil: 'load' });
	check(errors.length === 0, `page loads without script errors ${errors.length ? JSON.stringify(errors) : ''}`);
	check((await page.evaluate(() => typeof window.search)) === 'function', 'search(term) is exposed');
	if (args.screenshot) {
		await page.screenshot({ path: args.screenshot });
		console.log(`screenshot: ${args.screenshot}`);
	}

	// Every frame's geometry, read from the DOM.
	// (JSON text crosses the protocol far faster than 40k structured objects)
	const frames = async () =>
		JSON.parse(
			await page.$$eval('g.func_g', (gs) =>
				JSON.stringify(
					gs.map((g) => {
				const r = g.querySelector('rect');
				return {
					name: g.getAttribute('data-name'),
					x: +g.getAttribute('data-x'),
					v: +g.getAttribute('data-v'),
					d: +g.getAttribute('data-d'),
					rx: +r.getAttribute('x'),
					rw: +r.getAttribute('width'),
					fill: r.getAttribute('fill'),
					hidden: getComputedStyle(g).display === 'none',
					faded: g.classList.contains('parent'),
					match: g.classList.contains('match'),
				};
					})
				)
			)
		);
	const before = await frames();
	const plotw = Number(await page.$eval('svg', (s) => s.getAttribute('data-plotw')));
	const total = Number(await page.$eval('svg', (s) => s.getAttribute('data-total')));
	check(before.length > 1 && plotw > 0 && total > 0, `graph has ${before.length} frames, ${total} samples`);

	// 2. zoom: the widest frame named args.zoom that is not the root
	const targets = before.filter((f) => f.name === args.zoom && f.d > 0).sort((a, b) => b.v - a.v);
	if (check(targets.length > 0, `a frame named "${args.zoom}" is drawn`)) {
		const z = targets[0];
		const sel = `g.func_g[data-d="${z.d}"][data-x="${z.x}"]`;
		await page.click(`${sel} > rect`);
		const after = await frames();
		const za = after.find((f) => f.d === z.d && f.x === z.x);
		check(Math.abs(za.rw - plotw) < 1, `zoomed "${z.name}" fills the width (${za.rw.toFixed(1)} of ${plotw} px)`);
		check(!za.hidden && !za.faded, 'zoomed frame is shown, not faded');
		const ancestors = after.filter((f) => f.d < z.d && f.x <= z.x && f.x + f.v >= z.x + z.v);
		check(
			ancestors.length === z.d && ancestors.every((f) => !f.hidden && f.faded && Math.abs(f.rw - plotw) < 1),
			`its ${z.d} ancestors stay, full width and faded`
		);
		const outside = after.filter((f) => f.x + f.v <= z.x || f.x >= z.x + z.v);
		if (z.v < total) {
			check(outside.length > 0 && outside.every((f) => f.hidden), `frames outside its subtree are hidden (${outside.length})`);
			const sib = outside.find((f) => f.d === z.d);
			if (sib) check(sib.hidden, `sibling "${sib.name}" is hidden`);
		} else {
			console.log(`note: "${z.name}" holds every sample: no frame to hide`);
		}
		const inside = after.filter((f) => f.d > z.d && f.x >= z.x && f.x + f.v <= z.x + z.v && !f.hidden);
		check(
			inside.every((f) => Math.abs(f.rw - (f.v * plotw) / z.v) < 0.02),
			`its ${inside.length} descendants are rescaled to the zoom`
		);

		// 3. reset
		await page.click('#unzoom');
		const reset = await frames();
		const same = reset.every(
			(f, i) => !f.hidden && !f.faded && Math.abs(f.rx - before[i].rx) < 0.01 && Math.abs(f.rw - before[i].rw) < 0.01
		);
		check(same, 'Reset Zoom restores every frame');
	}

	// 4. search through the UI prompt
	page.once('dialog', (d) => d.accept(args.search));
	await page.click('#search');
	const matchedText = await page.$eval('#matched', (t) => t.textContent);
	const m = /^Matched: ([0-9.]+)%$/.exec(matchedText);
	if (check(m !== null, `"Matched:" line shown: "${matchedText}"`)) {
		const got = Number(m[1]);
		check(
			Math.abs(got - args.expect) <= args.tolerance,
			`matched ${got}% for /${args.search}/, expected ${args.expect}% ± ${args.tolerance}`
		);
	}
	const searched = await frames();
	const re = new RegExp(args.search);
	const hits = searched.filter((f) => re.test(f.name));
	if (hits.length === 0) console.log(`note: no drawn frame matches /${args.search}/ (all too narrow)`);
	check(
		searched.every((f) => (re.test(f.name) ? f.match && f.fill === 'rgb(230,0,230)' : !f.match && f.fill !== 'rgb(230,0,230)')),
		'matching frames (and only those) are highlighted'
	);
	const res = await page.evaluate((t) => window.search(t), args.search);
	check(res && Math.abs(res.percent - args.expect) <= args.tolerance, `search(term) returns ${res && res.percent.toFixed(3)}%`);

	// Clearing the search restores the colours.
	page.once('dialog', (d) => d.accept(''));
	await page.click('#search');
	const cleared = await frames();
	check(
		cleared.every((f, i) => !f.match && f.fill === before[i].fill) &&
			(await page.$eval('#matched', (t) => t.textContent)) === '',
		'an empty search clears the highlight'
	);

	check(errors.length === 0, `no script errors ${errors.length ? JSON.stringify(errors) : ''}`);
	check(external.length === 0, `no network requests ${external.length ? JSON.stringify(external) : ''}`);
} catch (e) {
	console.log(`FAIL ${e.stack || e}`);
	failures++;
} finally {
	await browser.close();
}

console.log(failures ? `${failures} check(s) failed` : 'all checks passed');
process.exit(failures ? 1 : 0);
