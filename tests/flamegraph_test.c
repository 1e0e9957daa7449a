// SPDX-License-Identifier: BSD-2-Clause
/*
 * Unit tests of flamegraph__encode_svg() (encoder/flamegraph.c), label unit.
 *
 * Profiles are built by hand from plain sym_module/sym_frame structs (a small
 * fixture turns "main;compute;leaf" strings, outermost first, into the
 * profile's leaf-first frame arrays), encoded, and the SVG is checked as text:
 * a strict well-formedness checker written here (tags balance, attribute values
 * and text hold no raw `<`, `>` or `&`, only known entities, valid UTF-8, no
 * control characters), plus `xmllint --noout` when it is installed. Frames are
 * found by their stable attributes: <g class="func_g fg-CLASS" data-name=...
 * data-v=... data-x=... data-d=...>.
 *
 * Built with FLAMEGRAPH_TEST_WRAP_ALLOC (tests/flamegraph.cmake links with
 * -Wl,--wrap=malloc,calloc,realloc), the alloc_failures test makes each
 * allocation of the encoder fail in turn: every one must give -ENOMEM, and
 * under ASan any leak on those cleanup paths fails the run.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "encoder.h"
#include "inline_fixture.h"
#include "profile_fixture.h"
#include "test_helpers.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/* ---- allocation fault injection ---- */

#ifdef FLAMEGRAPH_TEST_WRAP_ALLOC
static long alloc_countdown = -1; /* fail when it reaches 0; -1: never */

static bool alloc_fail(void)
{
	return alloc_countdown >= 0 && alloc_countdown-- == 0;
}

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);

void *__wrap_malloc(size_t n)
{
	return alloc_fail() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return alloc_fail() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
	return alloc_fail() ? NULL : __real_realloc(p, n);
}
#endif

/* ---- fixture: a hand-built profile ---- */

#define FX_FRAMES 256
#define FX_STACKS 64
#define FX_DEPTH  32
#define FX_SVGS	  4

struct fx {
	struct sym_module mods[16];
	char mod_names[16][64];
	size_t n_mods;
	struct sym_frame frames[FX_FRAMES];
	char names[FX_FRAMES][96];
	size_t n_frames;
	const struct sym_frame *ptrs[FX_STACKS][FX_DEPTH];
	struct profile_stack stacks[FX_STACKS];
	struct profile p;
	char *svgs[FX_SVGS]; /* what fx_encode() returned, freed by fx_free() */
	size_t n_svgs;
};

static const struct sym_module *fx_module(struct fx *f, const char *name, bool kernel)
{
	for (size_t i = 0; i < f->n_mods; i++) {
		if (strcmp(f->mods[i].name, name) == 0 && f->mods[i].is_kernel == kernel)
			return &f->mods[i];
	}
	if (f->n_mods == 16)
		abort();
	snprintf(f->mod_names[f->n_mods], sizeof(f->mod_names[0]), "%s", name);
	struct sym_module *m = &f->mods[f->n_mods++];
	m->path = m->name = f->mod_names[f->n_mods - 1];
	m->build_id = "";
	m->is_kernel = kernel;
	return m;
}

/*
 * A frame from its spec: "fn" (function in module app or [kernel.kallsyms]),
 * "?mod+0xADDR" (no function: module-level), "?" (no function, no module
 * name), "!" (a NULL frame pointer). Same spec, same kernel-ness: same frame.
 */
static const struct sym_frame *fx_frame(struct fx *f, const char *spec, bool kernel)
{
	if (strcmp(spec, "!") == 0)
		return NULL;
	for (size_t i = 0; i < f->n_frames; i++) {
		if (strcmp(f->names[i], spec) == 0 && f->frames[i].kind == kernel)
			return &f->frames[i];
	}
	if (f->n_frames == FX_FRAMES)
		abort();
	size_t i = f->n_frames++;
	struct sym_frame *fr = &f->frames[i];
	snprintf(f->names[i], sizeof(f->names[i]), "%s", spec);
	fr->kind = kernel ? SYM_FRAME_KERNEL : SYM_FRAME_USER;
	fr->id = i + 1;
	fr->address = 0x1000 + 0x10 * i;
	if (spec[0] == '?') {
		char mod[64] = "";
		unsigned long long addr = 0;
		if (spec[1])
			sscanf(spec + 1, "%63[^+]+0x%llx", mod, &addr);
		fr->module = fx_module(f, mod, kernel);
		fr->address = addr;
		fr->function = NULL;
	} else {
		fr->module = fx_module(f, kernel ? "[kernel.kallsyms]" : "app", kernel);
		fr->function = f->names[i];
	}
	return fr;
}

/* Appends a stack; user and kernel are ';'-separated specs, outermost first. */
static void fx_stack(struct fx *f, const char *pcomm, bool idle, uint64_t count, const char *user,
		     const char *kernel)
{
	if (f->p.n_stacks == FX_STACKS)
		abort();
	size_t si = f->p.n_stacks++;
	const struct sym_frame *outer_first[2][FX_DEPTH];
	uint32_t n[2] = {0, 0};
	const char *specs[2] = {kernel, user};

	for (int k = 0; k < 2; k++) {
		char buf[1024];
		char *save = NULL;
		if (!specs[k])
			continue;
		snprintf(buf, sizeof(buf), "%s", specs[k]);
		for (char *tok = strtok_r(buf, ";", &save); tok; tok = strtok_r(NULL, ";", &save))
			outer_first[k][n[k]++] = fx_frame(f, tok, k == 0);
	}
	/* leaf first: kernel leaf..outermost, then user leaf..outermost */
	size_t j = 0;
	for (int k = 0; k < 2; k++) {
		for (uint32_t i = n[k]; i > 0; i--)
			f->ptrs[si][j++] = outer_first[k][i - 1];
	}
	uint32_t tgid = idle ? 0 : 1000 + (uint32_t)si; /* tgid 0: the idle task */
	f->stacks[si] = fixture_stack(tgid, tgid, pcomm, pcomm, n[0], n[1], f->ptrs[si], count);
	f->p.total_samples += count;
}

static struct fx *fx_new(void)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		abort();
	f->p = fixture_profile("test-host", 1700000000ull * 1000000000ull, 99, f->stacks, 0);
	return f;
}

static void fx_free(struct fx *f)
{
	for (size_t i = 0; f && i < f->n_svgs; i++)
		free(f->svgs[i]);
	free(f);
}

/* Encodes into a NUL-terminated string the caller frees; NULL on error (*err set). */
static char *encode(const struct profile *p, const struct flamegraph_opts *o, int *err)
{
	struct encoded_buf out = {0};
	*err = flamegraph__encode_svg(p, o, &out);
	if (*err)
		return NULL;
	char *s = malloc(out.len + 1);
	if (s) {
		memcpy(s, out.data, out.len);
		s[out.len] = '\0';
		if (strlen(s) != out.len) /* an embedded NUL would be a bug too */
			s[0] = '\0';
	}
	free(out.data);
	return s;
}

/* Encodes f's profile into an SVG string that f owns; NULL on error (reported). */
static const char *fx_encode(struct fx *f, const struct flamegraph_opts *o)
{
	int err;
	char *svg = encode(&f->p, o, &err);

	if (!svg) {
		fprintf(stderr, "flamegraph__encode_svg: %d\n", err);
		return NULL;
	}
	if (f->n_svgs == FX_SVGS)
		abort();
	f->svgs[f->n_svgs++] = svg;
	return svg;
}

/* ---- a strict XML well-formedness checker ---- */

static bool entity_ok(const char *s, size_t *len)
{
	static const char *const named[] = {"&lt;", "&gt;", "&amp;", "&quot;", "&apos;"};
	for (size_t i = 0; i < 5; i++) {
		size_t n = strlen(named[i]);
		if (strncmp(s, named[i], n) == 0) {
			*len = n;
			return true;
		}
	}
	size_t i = 2;
	bool hex = s[1] == '#' && s[2] == 'x';
	if (s[1] != '#')
		return false;
	i += hex;
	size_t start = i;
	while (hex ? strchr("0123456789abcdefABCDEF", s[i]) && s[i] : s[i] >= '0' && s[i] <= '9')
		i++;
	if (i == start || s[i] != ';')
		return false;
	*len = i + 1;
	return true;
}

static bool name_char(char c, bool first)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':')
		return true;
	return !first && ((c >= '0' && c <= '9') || c == '-' || c == '.');
}

static bool utf8_ok(const unsigned char *s)
{
	while (*s) {
		size_t n = *s < 0x80		 ? 1
			   : (*s & 0xe0) == 0xc0 ? 2
			   : (*s & 0xf0) == 0xe0 ? 3
			   : (*s & 0xf8) == 0xf0 ? 4
						 : 0;
		if (!n || (*s < 0x20 && *s != '\n' && *s != '\t' && *s != '\r'))
			return false;
		for (size_t i = 1; i < n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return false;
		}
		s += n;
	}
	return true;
}

/* Returns NULL if s is well-formed, else a static message naming the offset. */
static const char *xml_check(const char *s)
{
	static char msg[160];
	const char *stack[512];
	size_t depth = 0, roots = 0;
	const char *p = s;
#define BAD(why)                                                                                   \
	do {                                                                                       \
		snprintf(msg, sizeof(msg), "%s at offset %zu: %.40s", why, (size_t)(p - s), p);    \
		return msg;                                                                        \
	} while (0)

	if (!utf8_ok((const unsigned char *)s))
		BAD("invalid UTF-8 or control character");
	while (*p) {
		if (*p == '&') {
			size_t n;
			if (!entity_ok(p, &n))
				BAD("raw & in text");
			p += n;
		} else if (*p == '>') {
			BAD("raw > in text");
		} else if (*p != '<') {
			if (!depth && !strchr(" \t\r\n", *p))
				BAD("text outside the root element");
			p++;
		} else if (strncmp(p, "<?", 2) == 0) {
			const char *e = strstr(p, "?>");
			if (!e || depth)
				BAD("bad processing instruction");
			p = e + 2;
		} else if (strncmp(p, "<!--", 4) == 0) {
			const char *e = strstr(p + 4, "-->");
			if (!e)
				BAD("unterminated comment");
			p = e + 3;
		} else if (strncmp(p, "<![CDATA[", 9) == 0) {
			const char *e = strstr(p + 9, "]]>");
			if (!e || !depth)
				BAD("bad CDATA section");
			p = e + 3;
		} else if (p[1] == '/') {
			const char *nm = p + 2, *e = nm;
			while (name_char(*e, e == nm))
				e++;
			if (!depth || e == nm || *e != '>')
				BAD("bad end tag");
			const char *open = stack[--depth];
			if (strncmp(open, nm, (size_t)(e - nm)) != 0 ||
			    name_char(open[e - nm], false))
				BAD("mismatched end tag");
			p = e + 1;
		} else {
			const char *nm = p + 1, *e = nm;
			if (!name_char(*e, true))
				BAD("bad start tag");
			while (name_char(*e, e == nm))
				e++;
			for (;;) {
				const char *ws = e;
				while (*e == ' ' || *e == '\n' || *e == '\t')
					e++;
				if (*e == '>' || (e[0] == '/' && e[1] == '>'))
					break;
				if (e == ws || !name_char(*e, true))
					BAD("bad attribute");
				while (name_char(*e, false))
					e++;
				if (*e++ != '=' || (*e != '"' && *e != '\''))
					BAD("attribute without quoted value");
				char q = *e++;
				while (*e && *e != q) {
					size_t n;
					if (*e == '<' || *e == '>')
						BAD("raw < or > in attribute value");
					if (*e == '&' && !entity_ok(e, &n))
						BAD("raw & in attribute value");
					e++;
				}
				if (!*e)
					BAD("unterminated attribute value");
				e++;
			}
			if (!depth && roots++)
				BAD("second root element");
			if (*e == '/') {
				p = e + 2;
			} else {
				if (depth == 512)
					BAD("too deep");
				stack[depth++] = nm;
				p = e + 1;
			}
		}
	}
	if (depth || roots != 1)
		BAD("unbalanced tags at end");
#undef BAD
	return NULL;
}

/* Runs `tool args FILE` on a temporary file (name ending in suffix) holding
 * data[0..n), when tool is installed: 0 accepted or no tool, 1 rejected. */
static int run_tool(const char *tool, const char *args, const char *suffix, const char *data,
		    size_t n)
{
	char cmd[256], path[64];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	if (system(cmd) != 0)
		return 0;
	snprintf(path, sizeof(path), "/tmp/flamegraph_test_XXXXXX%s", suffix);
	int fd = mkstemps(path, (int)strlen(suffix));
	if (fd < 0)
		return 1;
	bool ok = write(fd, data, n) == (ssize_t)n;
	close(fd);
	snprintf(cmd, sizeof(cmd), "%s %s %s", tool, args, path);
	ok = ok && system(cmd) == 0;
	unlink(path);
	return ok ? 0 : 1;
}

/* Runs xmllint --noout when installed: 0 ok or not installed, 1 rejected. */
static int xmllint(const char *svg)
{
	return run_tool("xmllint", "--noout", "", svg, strlen(svg));
}

/*
 * Runs `node --check` on every CDATA script of svg when node is installed:
 * 0 parses or no node, 1 a syntax error (or a script without its end).
 */
static int js_check(const char *svg)
{
	const char *open = "<script type=\"text/ecmascript\"><![CDATA[";
	char *js = malloc(strlen(svg) + 1);
	size_t n = 0;
	bool ok = js != NULL;

	for (const char *s = strstr(svg, open); s && ok; s = strstr(s, open)) {
		s += strlen(open);
		const char *e = strstr(s, "]]></script>");
		ok = e != NULL;
		if (ok) {
			memcpy(js + n, s, (size_t)(e - s));
			n += (size_t)(e - s);
		}
	}
	int rc = ok ? run_tool("node", "--check", ".js", js, n) : 1;
	free(js);
	return rc;
}

/* ---- finding frames in the SVG ---- */

struct frame_el {
	const char *start, *end; /* "<g class=\"func_g ..." up to "</g>" */
};

/* Finds the drawn frame whose (escaped) data-name is name, at depth d (-1: any). */
static bool find_frame(const char *svg, const char *name, int d, struct frame_el *out)
{
	char want[512], dep[32];
	snprintf(want, sizeof(want), "data-name=\"%s\" ", name);
	snprintf(dep, sizeof(dep), "data-d=\"%d\"", d);
	for (const char *g = strstr(svg, "<g class=\"func_g "); g;
	     g = strstr(g + 1, "<g class=\"func_g ")) {
		const char *e = strstr(g, "</g>");
		const char *tag_end = strchr(g, '>');
		const char *nm = strstr(g, want), *dp = strstr(g, dep);
		if (!e || !tag_end || !nm || nm > tag_end)
			continue;
		if (d >= 0 && (!dp || dp > tag_end))
			continue;
		out->start = g;
		out->end = e;
		return true;
	}
	return false;
}

/* The numeric value of attribute attr (e.g. "width", "data-v") inside the frame element. */
static double frame_num(const struct frame_el *f, const char *attr)
{
	char key[64];
	snprintf(key, sizeof(key), " %s=\"", attr);
	const char *a = strstr(f->start, key);
	if (!a || a > f->end)
		return -1;
	return strtod(a + strlen(key), NULL);
}

static bool frame_has_class(const struct frame_el *f, const char *cls)
{
	char key[64];
	snprintf(key, sizeof(key), "class=\"func_g %s\"", cls);
	return strncmp(f->start + 3, key, strlen(key)) == 0;
}

/* The text of the frame's <text> label (escaped), copied into buf. */
static const char *frame_label(const struct frame_el *f, char *buf, size_t len)
{
	const char *t = strstr(f->start, "<text ");
	t = t ? strchr(t, '>') : NULL;
	const char *e = t ? strstr(t, "</text>") : NULL;
	if (!t || !e || e > f->end)
		return NULL;
	snprintf(buf, len, "%.*s", (int)(e - t - 1), t + 1);
	return buf;
}

static size_t count_str(const char *s, const char *needle)
{
	size_t n = 0;
	for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* The standard small profile used by several tests: 1000 samples. */
static struct fx *fx_standard(void)
{
	struct fx *f = fx_new();
	fx_stack(f, "app", false, 300, "main;compute;func_a", NULL);
	fx_stack(f, "app", false, 100, "main;compute;func_b", NULL);
	fx_stack(f, "app", false, 150, "main;io;read", "entry_SYSCALL_64;ksys_read;vfs_read");
	fx_stack(f, "app", false, 50, "main;?libfoo.so+0x1234;?", NULL);
	fx_stack(f, "app", false, 50, "main;!", NULL);
	fx_stack(f, "[idle]", true, 250, NULL,
		 "secondary_startup_64;cpu_startup_entry;do_idle;default_idle");
	fx_stack(f, "worker", false, 100, "start_thread;func_a", NULL);
	return f;
}

/* ---- tests ---- */

static int test_wellformed(void)
{
	struct fx *f = fx_standard();
	const char *svg = fx_encode(f, NULL);
	CHECK(svg);
	const char *why = xml_check(svg);
	if (why)
		fprintf(stderr, "not well-formed: %s\n", why);
	CHECK(!why);
	CHECK(xmllint(svg) == 0);
	/* the checker itself must reject what it is meant to catch */
	CHECK(xml_check("<svg><g></svg>") && xml_check("<svg a=\"x<y\"/>") &&
	      xml_check("<svg>a&b</svg>") && xml_check("<svg>a>b</svg>") &&
	      !xml_check("<svg a=\"&lt;&#60;&#x3c;\">&amp;<![CDATA[<&>]]></svg>"));
	fx_free(f);
	return 0;
}

static int test_escaping(void)
{
	struct fx *f = fx_new();
	fx_stack(f, "a<b>&c", false, 10, "main;std::vector<int>::operator<;a&b", NULL);
	fx_stack(f, "app", false, 10, "say \"hi\";it's;x>y", NULL);
	f->p.hostname = "h<o>s&t\"'";
	struct flamegraph_opts o = {.title = "T <&> \"'"};
	const char *svg = fx_encode(f, &o);
	struct frame_el fr;
	CHECK(svg && !xml_check(svg) && !xmllint(svg));
	CHECK(find_frame(svg, "std::vector&lt;int&gt;::operator&lt;", 3, &fr));
	CHECK(find_frame(svg, "a&amp;b", 4, &fr));
	CHECK(find_frame(svg, "a&lt;b&gt;&amp;c", 1, &fr));
	CHECK(find_frame(svg, "say &quot;hi&quot;", 2, &fr));
	CHECK(find_frame(svg, "it&apos;s", 3, &fr));
	CHECK(find_frame(svg, "x&gt;y", 4, &fr));
	CHECK(!strstr(svg, "vector<int>") && !strstr(svg, "a&b") && !strstr(svg, "operator<\"") &&
	      !strstr(svg, "x>y") && !strstr(svg, "\"hi\""));
	CHECK(strstr(svg, ">T &lt;&amp;&gt; &quot;&apos;</text>"));
	CHECK(strstr(svg, "host: h&lt;o&gt;s&amp;t&quot;&apos;"));
	fx_free(f);
	return 0;
}

static int test_widths_proportional(void)
{
	struct fx *f = fx_standard();
	struct flamegraph_opts o = {.width = 1000};
	const char *svg = fx_encode(f, &o);
	struct frame_el root, a, b, k;
	CHECK(svg);
	double plotw = 1000 - 20;
	CHECK(find_frame(svg, "all", 0, &root) && find_frame(svg, "func_a", 4, &a) &&
	      find_frame(svg, "func_b", 4, &b) && find_frame(svg, "vfs_read", 7, &k));
	double wr = frame_num(&root, "width"), wa = frame_num(&a, "width");
	double wb = frame_num(&b, "width"), wk = frame_num(&k, "width");
	/* 300:100 under compute, of 1000 samples in all */
	CHECK(wa > 0 && wb > 0 && (wa - 3 * wb) <= 1 && (3 * wb - wa) <= 1);
	CHECK(wr >= plotw - 0.01 && wr <= plotw + 0.01);
	CHECK(wa >= 0.3 * plotw - 0.01 && wa <= 0.3 * plotw + 0.01);
	CHECK(wk >= 0.15 * plotw - 0.01 && wk <= 0.15 * plotw + 0.01);
	/* siblings sit side by side: func_b starts where func_a ends */
	double xa = frame_num(&a, "x"), xb = frame_num(&b, "x");
	CHECK(xb - (xa + wa) <= 0.01 && (xa + wa) - xb <= 0.01);
	CHECK(frame_num(&a, "data-v") == 300 && frame_num(&b, "data-v") == 100 &&
	      frame_num(&root, "data-v") == 1000);
	CHECK(strstr(a.start, "<title>func_a (300 samples, 30.00%)</title>"));
	fx_free(f);
	return 0;
}

static int test_classes_and_depths(void)
{
	struct fx *f = fx_standard();
	const char *svg = fx_encode(f, NULL);
	struct frame_el fr;
	CHECK(svg);
	/* process roots, user outermost..leaf, then kernel outermost..leaf */
	static const struct {
		const char *name;
		int depth;
		const char *cls;
	} want[] = {
		{"all", 0, "fg-root"},
		{"app", 1, "fg-proc"},
		{"worker", 1, "fg-proc"},
		{"main", 2, "fg-user"},
		{"io", 3, "fg-user"},
		{"read", 4, "fg-user"},
		{"entry_SYSCALL_64", 5, "fg-kernel"},
		{"ksys_read", 6, "fg-kernel"},
		{"vfs_read", 7, "fg-kernel"},
		{"[idle]", 1, "fg-idle"},
		{"secondary_startup_64", 2, "fg-idle"},
		{"default_idle", 5, "fg-idle"},
		{"func_a", 4, "fg-user"},
		{"func_a", 3, "fg-user"},
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		bool found = find_frame(svg, want[i].name, want[i].depth, &fr) &&
			     frame_has_class(&fr, want[i].cls);
		if (!found)
			fprintf(stderr, "frame %s at depth %d with class %s not found\n",
				want[i].name, want[i].depth, want[i].cls);
		CHECK(found);
	}
	/* the kernel leaf is drawn above (smaller y) the user leaf */
	struct frame_el u, k;
	CHECK(find_frame(svg, "read", 4, &u) && find_frame(svg, "vfs_read", 7, &k));
	CHECK(frame_num(&k, "y") < frame_num(&u, "y"));
	/* distinct fills: a kernel frame is not coloured like a user frame */
	const char *fu = strstr(u.start, "fill=\""), *fk = strstr(k.start, "fill=\"");
	CHECK(fu && fk && strncmp(fu, fk, 20) != 0);
	fx_free(f);
	return 0;
}

static int test_merge_and_names(void)
{
	struct fx *f = fx_standard();
	/* a second frame object with the same function name merges by name */
	fx_stack(f, "app", false, 7, "main;compute;func_a", NULL);
	f->frames[f->n_frames] = *fx_frame(f, "func_a", false);
	f->ptrs[f->p.n_stacks - 1][0] = &f->frames[f->n_frames++];
	/* a zero-count stack adds nothing */
	fx_stack(f, "ghost", false, 0, "never_seen", NULL);
	const char *svg = fx_encode(f, NULL);
	struct frame_el fr;
	CHECK(svg);
	CHECK(find_frame(svg, "func_a", 4, &fr) && frame_num(&fr, "data-v") == 307);
	CHECK(count_str(svg, "data-name=\"func_a\"") == 2); /* under app and under worker */
	CHECK(find_frame(svg, "compute", 3, &fr) && frame_num(&fr, "data-v") == 407);
	CHECK(find_frame(svg, "[libfoo.so+0x1234]", 3, &fr) &&
	      find_frame(svg, "[unknown]", 4, &fr));
	/* NULL frame */
	CHECK(find_frame(svg, "[unknown]", 3, &fr) && frame_num(&fr, "data-v") == 50);
	CHECK(!strstr(svg, "never_seen") && !strstr(svg, "ghost"));
	CHECK(find_frame(svg, "all", 0, &fr) && frame_num(&fr, "data-v") == 1007);
	fx_free(f);
	return 0;
}

static int test_title(void)
{
	struct fx *f = fx_standard();
	f->p.drops.kernel_ring_full = 3;
	f->p.drops.queue_full = 2;
	struct flamegraph_opts o = {.title = "My profile", .width = 800};
	const char *svg = fx_encode(f, &o);
	const char *dflt = fx_encode(f, NULL);
	CHECK(svg && dflt);
	const char *sub = strstr(svg, "<text id=\"subtitle\"");
	const char *end = sub ? strstr(sub, "</text>") : NULL;
	CHECK(strstr(svg, ">My profile</text>") && sub && end);
	static const char *const need[] = {"host: test-host", "frequency: 99 Hz",
					   "samples: 1000",   "duration: 10.00 s",
					   "dropped: 5",      "2023-11-14 22:13:20 UTC"};
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		const char *hit = strstr(sub, need[i]);
		if (!hit || hit > end)
			fprintf(stderr, "subtitle lacks \"%s\"\n", need[i]);
		CHECK(hit && hit <= end);
	}
	CHECK(strstr(svg, "width=\"800\"") && strstr(dflt, ">CPU flame graph</text>") &&
	      strstr(dflt, "width=\"1200\""));
	fx_free(f);
	return 0;
}

static int test_self_contained(void)
{
	struct fx *f = fx_standard();
	const char *svg = fx_encode(f, NULL);
	CHECK(svg);
	size_t http = count_str(svg, "http"),
	       ns = count_str(svg, "xmlns=\"http://www.w3.org/2000/svg\"");
	bool ok = http == 1 && ns == 1 && !strstr(svg, "href") && !strstr(svg, "url(") &&
		  !strstr(svg, "<!DOCTYPE") && !strstr(svg, "@import") && !strstr(svg, "src=");
	/* the interactive parts are there */
	ok = ok && strstr(svg, "<script type=\"text/ecmascript\"><![CDATA[") &&
	     strstr(svg, "function search(term)") && strstr(svg, "function unzoom()") &&
	     strstr(svg, "function resetSearch()") && strstr(svg, "id=\"matched\"") &&
	     strstr(svg, ">Reset Zoom</text>") && strstr(svg, ">Search</text>") &&
	     strstr(svg, "'Matched: '") && strstr(svg, "prompt(") &&
	     count_str(svg, "]]>") == count_str(svg, "<![CDATA[");
	fx_free(f);
	CHECK(ok);
	return 0;
}

static int test_narrow_frames(void)
{
	struct fx *f = fx_new();
	fx_stack(f, "app", false, 1000000, "main;hot", NULL);
	fx_stack(f, "app", false, 1, "main;tiny<1>;leaf", NULL);
	fx_stack(f, "app", false, 1, "main;hot;tiny<1>", NULL);
	for (int i = 0; i < 10; i++) {
		char spec[32];
		snprintf(spec, sizeof(spec), "main;t%d", i);
		fx_stack(f, "app", false, 1, spec, NULL);
	}
	const char *svg = fx_encode(f, NULL);
	struct frame_el fr;
	CHECK(svg);
	/* 1 of 1000012 samples is 0.001 px: not drawn, but still counted */
	CHECK(!find_frame(svg, "tiny&lt;1&gt;", -1, &fr) && !find_frame(svg, "leaf", -1, &fr));
	CHECK(find_frame(svg, "main", 2, &fr) && frame_num(&fr, "data-v") == 1000012);
	CHECK(find_frame(svg, "hot", 3, &fr) && frame_num(&fr, "data-v") == 1000001);
	/* listed for search, JSON-escaped so nothing can close the CDATA section */
	const char *names = strstr(svg, "var fgNames = [");
	const char *omitted = strstr(svg, "var fgOmitted = [");
	CHECK(names && omitted && strstr(names, "\"tiny\\u003c1\\u003e\"") &&
	      strstr(names, "\"leaf\""));
	/* 13 triples (tiny<1> and leaf under main, tiny<1> under hot, t0..t9): 39
	 * numbers, each followed by a comma but the last, and nothing else */
	const char *close = strstr(omitted, "];");
	size_t commas = 0, numbers = 0;
	for (const char *c = omitted + strlen("var fgOmitted = ["); close && c < close; c++) {
		if (*c >= '0' && *c <= '9' && (c[1] < '0' || c[1] > '9'))
			numbers++;
		else if (*c == ',')
			commas++;
		else
			CHECK(*c == '\n' || (*c >= '0' && *c <= '9'));
	}
	CHECK(close && numbers == 39 && commas == 38);
	CHECK(!xml_check(svg) && !js_check(svg));
	fx_free(f);
	return 0;
}

static int test_labels(void)
{
	struct fx *f = fx_new();
	char lbl[256];
	fx_stack(f, "app", false, 90, "main;short", NULL);
	fx_stack(f, "app", false, 90, "main;a_rather_long_function_name_that_cannot_fit", NULL);
	fx_stack(f, "app", false, 10, "main;z_tiny", NULL);
	fx_stack(f, "app", false, 810, "main;filler", NULL);
	struct flamegraph_opts o = {.width = 1020}; /* 1000 px of plot, 1000 samples */
	const char *svg = fx_encode(f, &o);
	struct frame_el fr;
	CHECK(svg);
	/* 90 px fits the name */
	CHECK(find_frame(svg, "short", 3, &fr));
	CHECK_STR(frame_label(&fr, lbl, sizeof(lbl)), "short");
	/* 90 px: (90 - 6) / 7.08 = 11 characters, the last two "..": the head and ".." */
	CHECK(find_frame(svg, "a_rather_long_function_name_that_cannot_fit", 3, &fr));
	CHECK_STR(frame_label(&fr, lbl, sizeof(lbl)), "a_rather_..");
	/* 10 px: no label at all */
	CHECK(find_frame(svg, "z_tiny", 3, &fr));
	CHECK_STR(frame_label(&fr, lbl, sizeof(lbl)), "");
	fx_free(f);
	return 0;
}

static int test_sanitize(void)
{
	struct fx *f = fx_new();
	fx_stack(f, "x\x02y", false, 5, "bad\xff\x01name;ok\xc3\xa9;\xed\xa0\x80surrogate", NULL);
	/* a pcomm that fills its array with no NUL: must not be overread */
	memset(f->stacks[0].pcomm, 'P', sizeof(f->stacks[0].pcomm));
	memset(f->stacks[0].comm, 'C', sizeof(f->stacks[0].comm));
	const char *svg = fx_encode(f, NULL);
	struct frame_el fr;
	CHECK(svg);
	CHECK(!xml_check(svg) && !xmllint(svg));
	CHECK(find_frame(svg, "PPPPPPPPPPPPPPPP", 1, &fr) && find_frame(svg, "bad??name", 2, &fr) &&
	      find_frame(svg, "ok\xc3\xa9", 3, &fr) && find_frame(svg, "???surrogate", 4, &fr));
	fx_free(f);
	return 0;
}

static int test_errors_and_empty(void)
{
	struct fx *f = fx_standard();
	struct encoded_buf out = {0};
	int err;
	CHECK(flamegraph__encode_svg(NULL, NULL, &out) == -EINVAL);
	CHECK(flamegraph__encode_svg(&f->p, NULL, NULL) == -EINVAL);
	struct profile bad = f->p;
	bad.stacks = NULL;
	CHECK(flamegraph__encode_svg(&bad, NULL, &out) == -EINVAL);
	f->stacks[0].frames = NULL;
	CHECK(flamegraph__encode_svg(&f->p, NULL, &out) == -EINVAL);
	CHECK(out.data == NULL);

	struct profile empty = {.hostname = NULL, .frequency_hz = 99};
	char *svg = encode(&empty, NULL, &err);
	CHECK(svg);
	bool ok = !xml_check(svg) && strstr(svg, ">No samples</text>") &&
		  !strstr(svg, "class=\"func_g") && strstr(svg, "host: unknown") &&
		  strstr(svg, "function search(term)");
	free(svg);
	fx_free(f);
	CHECK(ok);
	return 0;
}

#ifdef FLAMEGRAPH_TEST_WRAP_ALLOC
/* Fails allocation 0, 1, 2, ... of one encode until it succeeds; returns how many it made. */
static long fail_each_alloc(const struct profile *p, int *failed)
{
	long n;
	for (n = 0; n < 100000; n++) {
		struct encoded_buf out = {0};
		alloc_countdown = n;
		int err = flamegraph__encode_svg(p, NULL, &out);
		alloc_countdown = -1;
		if (!err) {
			free(out.data);
			break;
		}
		if (err != -ENOMEM || out.data) {
			fprintf(stderr, "allocation %ld failed: err %d, data %p\n", n, err,
				(void *)out.data);
			*failed = 1;
		}
	}
	return n;
}
#endif

static int test_alloc_failures(void)
{
#ifndef FLAMEGRAPH_TEST_WRAP_ALLOC
	return TEST_SKIP;
#else
	enum { N = 1500 }; /* past every table's and array's first growth */
	struct fx *f = fx_standard();
	struct sym_module mod = {.path = "/usr/bin/many", .name = "many", .build_id = ""};
	struct sym_frame *frames = calloc(N, sizeof(*frames));
	const struct sym_frame **ptrs = calloc(N, sizeof(*ptrs));
	struct profile_stack *stacks = calloc(N, sizeof(*stacks));
	char(*names)[16] = calloc(N, sizeof(*names));
	int failed = 0;
	long small = 0, big = 0;

	if (frames && ptrs && stacks && names) {
		for (size_t i = 0; i < N; i++) {
			snprintf(names[i], sizeof(names[i]), "f%zu", i);
			frames[i] =
				(struct sym_frame)FIXTURE_UFRAME(&mod, i, names[i], NULL, 0, i + 1);
			ptrs[i] = &frames[i];
			snprintf(stacks[i].pcomm, sizeof(stacks[i].pcomm), "p%zu", i % 7);
			stacks[i].n_user = 1;
			stacks[i].frames = &ptrs[i];
			stacks[i].count = 1 + i % 3;
		}
		struct profile many = {.hostname = "h", .stacks = stacks, .n_stacks = N};
		small = fail_each_alloc(&f->p, &failed);
		big = fail_each_alloc(&many, &failed);
	}
	free(frames);
	free(ptrs);
	free(stacks);
	free(names);
	fx_free(f);
	printf("     %ld and %ld allocations, each failed in turn\n", small, big);
	CHECK(!failed && small > 5 && big > small && big < 100000);
	return 0;
#endif
}

/* Functions inlined at a frame are frames of their own above it, caller
 * first, in class fg-inline with "(inlined)" in their tooltip. */
static int test_inlined(void)
{
	struct profile_stack stacks[2];
	inline_fixture_stacks(stacks);
	struct profile p = fixture_profile("test-host", 1767225600000000000ULL, 99, stacks, 2);
	int err;
	char *svg = encode(&p, NULL, &err);
	struct frame_el fr;

	CHECK(svg);
	const char *why = xml_check(svg);
	if (why)
		fprintf(stderr, "inlined: %s\n", why);
	CHECK(!why);
	static const struct {
		const char *name; /* escaped, as in data-name */
		int depth;
		const char *cls;
		double samples;
	} want[] = {
		{"server", 1, "fg-proc", 8},
		{"main", 2, "fg-user", 8},
		{"app::Server::run()", 3, "fg-user", 6},
		{"app::Table::lookup(int) const", 4, "fg-inline", 6},
		{"app::hash&lt;int&gt;(int)", 5, "fg-inline", 6},
		{"app::hash&lt;int&gt;(int)", 3, "fg-user", 2},
		{"app::Server::run()", 4, "fg-user", 2},
		{"app::Table::lookup(int) const", 5, "fg-inline", 2},
		{"ksys_read", 6, "fg-kernel", 2},
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		bool found = find_frame(svg, want[i].name, want[i].depth, &fr) &&
			     frame_has_class(&fr, want[i].cls) &&
			     frame_num(&fr, "data-v") == want[i].samples;
		if (!found)
			fprintf(stderr, "frame %s at depth %d, class %s, %.0f samples not found\n",
				want[i].name, want[i].depth, want[i].cls, want[i].samples);
		CHECK(found);
	}
	/* the tooltip says inlined for inlined frames only */
	CHECK(find_frame(svg, "app::hash&lt;int&gt;(int)", 5, &fr));
	const char *title = strstr(fr.start, "<title>");
	CHECK(title && title < fr.end);
	CHECK(strncmp(title,
		      "<title>app::hash&lt;int&gt;(int) (inlined) (6 samples, 75.00%)</title>",
		      strlen("<title>app::hash&lt;int&gt;(int) (inlined) (6 samples, "
			     "75.00%)</title>")) == 0);
	const char *fill_inl = strstr(fr.start, "fill=\"");
	CHECK(find_frame(svg, "app::hash&lt;int&gt;(int)", 3, &fr));
	title = strstr(fr.start, "<title>");
	CHECK(title && title < fr.end);
	CHECK(strncmp(title, "<title>app::hash&lt;int&gt;(int) (2 samples",
		      strlen("<title>app::hash&lt;int&gt;(int) (2 samples")) == 0);
	/* coloured apart from user frames, and in the legend */
	const char *fill_user = strstr(fr.start, "fill=\"");
	CHECK(fill_inl && fill_user && strncmp(fill_inl, fill_user, 20) != 0);
	CHECK(strstr(svg, "<rect class=\"legend fg-inline\""));
	CHECK_EQ_U64(count_str(svg, "(inlined)"), 3);
	free(svg);

#ifdef FLAMEGRAPH_TEST_WRAP_ALLOC
	int failed = 0;
	long n = fail_each_alloc(&p, &failed);
	CHECK(!failed && n > 5 && n < 100000);
#endif
	return 0;
}

/* ---- 100k stacks: a large profile encodes whole (its time is reported) ---- */

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* CPU time of this thread: a loaded machine (parallel ctest) does not inflate it. */
static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int test_perf_100k(void)
{
	enum { N_STACKS = 100000, N_FUNCS = 5000, N_PATHS = 2000, N_PROCS = 50, MAX_D = 48 };
	struct sym_module mod = {.path = "/usr/bin/big", .name = "big", .build_id = ""};
	struct sym_frame *funcs = calloc(N_FUNCS, sizeof(*funcs));
	char(*names)[32] = calloc(N_FUNCS, sizeof(*names));
	const struct sym_frame **paths = calloc((size_t)N_PATHS * MAX_D, sizeof(*paths));
	uint32_t *path_len = calloc(N_PATHS, sizeof(*path_len));
	const struct sym_frame **frames = calloc((size_t)N_STACKS * MAX_D, sizeof(*frames));
	struct profile_stack *stacks = calloc(N_STACKS, sizeof(*stacks));
	char *svg = NULL;
	uint64_t seed = 0x9e3779b97f4a7c15ull, total = 0;
	int err = 0, rc = 1;

	if (!funcs || !names || !paths || !path_len || !frames || !stacks)
		goto out;
	for (size_t i = 0; i < N_FUNCS; i++) {
		bool k = i >= N_FUNCS - 500;
		const char *fn = i % 10 == 9 ? NULL : names[i];
		snprintf(names[i], sizeof(names[i]), "%s_%zu", k ? "kfunc" : "function", i);
		if (k)
			funcs[i] = (struct sym_frame)FIXTURE_KFRAME(0x1000 + i * 16, fn, i + 1);
		else
			funcs[i] = (struct sym_frame)FIXTURE_UFRAME(&mod, 0x1000 + i * 16, fn, NULL,
								    0, i + 1);
	}
	/* shared call paths (outermost first), then per-stack distinct leaves */
	for (size_t p = 0; p < N_PATHS; p++) {
		path_len[p] = 8 + (uint32_t)(rng_next(&seed) % 24);
		for (uint32_t d = 0; d < path_len[p]; d++)
			paths[p * MAX_D + d] = &funcs[rng_next(&seed) % (N_FUNCS - 500)];
	}
	for (size_t i = 0; i < N_STACKS; i++) {
		struct profile_stack *s = &stacks[i];
		const struct sym_frame **fr = &frames[i * MAX_D];
		size_t p = rng_next(&seed) % N_PATHS;
		uint32_t leaves = 1 + (uint32_t)(rng_next(&seed) % 4);
		uint32_t nk = rng_next(&seed) % 3 == 0 ? 1 + (uint32_t)(rng_next(&seed) % 6) : 0;
		uint32_t nu = path_len[p] + leaves, j = 0;
		for (uint32_t k = 0; k < nk; k++)
			fr[j++] = &funcs[N_FUNCS - 500 + rng_next(&seed) % 500];
		for (uint32_t k = 0; k < leaves; k++)
			fr[j++] = &funcs[rng_next(&seed) % (N_FUNCS - 500)];
		for (uint32_t d = path_len[p]; d > 0; d--)
			fr[j++] = paths[p * MAX_D + d - 1];
		s->tgid = 100 + (uint32_t)(p % N_PROCS);
		s->idle = i % 97 == 0;
		snprintf(s->pcomm, sizeof(s->pcomm), "%s", s->idle ? "[idle]" : "proc");
		if (!s->idle)
			snprintf(s->pcomm, sizeof(s->pcomm), "proc_%u", s->tgid);
		s->n_kernel = nk;
		s->n_user = nu;
		s->frames = fr;
		s->count = 1 + rng_next(&seed) % 20;
		total += s->count;
	}
	struct profile pr = {.signal = "cpu",
			     .hostname = "big",
			     .duration_ns = 60000000000ull,
			     .frequency_hz = 99,
			     .stacks = stacks,
			     .n_stacks = N_STACKS,
			     .total_samples = total};
	double t0 = cpu_s();
	svg = encode(&pr, NULL, &err);
	double dt = cpu_s() - t0;
	/* Reported, not asserted: a test is no benchmark (pipeline-bench
	 * throughput --stage encoder measures the SVG encoder). */
	printf("     100k stacks: %.3f s CPU, %zu bytes%s\n", dt, svg ? strlen(svg) : 0,
	       SANITIZED ? " (sanitized build)" : "");
	if (!svg) {
		fprintf(stderr, "100k stacks: encode failed, err %d\n", err);
		goto out;
	}
	struct frame_el fr;
	if (!find_frame(svg, "all", 0, &fr) || frame_num(&fr, "data-v") != (double)total)
		goto out;
	const char *why = xml_check(svg);
	if (why) {
		fprintf(stderr, "100k: %s\n", why);
		goto out;
	}
	/* kernel frames sit above leaves: narrow, so they may be in the search list only */
	if (!strstr(svg, "class=\"func_g fg-idle\"") || !strstr(svg, "class=\"func_g fg-user\"") ||
	    !strstr(svg, "\"kfunc_") || !strstr(svg, "[big+0x")) {
		fprintf(stderr, "100k: classes or names missing\n");
		goto out;
	}
	if (getenv("FLAMEGRAPH_TEST_DUMP")) {
		FILE *df = fopen(getenv("FLAMEGRAPH_TEST_DUMP"), "w");
		if (df) {
			fputs(svg, df);
			fclose(df);
		}
	}
	rc = 0;
out:
	free(svg);
	free(funcs);
	free(names);
	free(paths);
	free(path_len);
	free(frames);
	free(stacks);
	return rc;
}

static const struct test_case cases[] = {
	{"wellformed", test_wellformed},
	{"escaping", test_escaping},
	{"widths_proportional", test_widths_proportional},
	{"classes_and_depths", test_classes_and_depths},
	{"merge_and_names", test_merge_and_names},
	{"inlined", test_inlined},
	{"title", test_title},
	{"self_contained", test_self_contained},
	{"narrow_frames", test_narrow_frames},
	{"labels", test_labels},
	{"sanitize", test_sanitize},
	{"errors_and_empty", test_errors_and_empty},
	{"alloc_failures", test_alloc_failures},
	{"perf_100k", test_perf_100k},
};

TEST_MAIN(cases)
