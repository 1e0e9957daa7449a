/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Allocation probes (see alloc_probes.h). Per target process: find its
 * allocator (alloc_target.c), then attach, for each function that file
 * defines, the entry program at the chosen probe point and the return
 * program at the entry (a uretprobe must see the return address on top of
 * the stack), and free's program at its probe point. Uprobes are attached
 * per process (pid filter in the kernel), so other processes sharing the
 * library pay nothing.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_probes.h"
#include "alloc_sample.skel.h"
#include "alloc_target.h"

struct probed {
	struct alloc_target target;
	struct bpf_link **links;
	size_t n_links, cap_links;
};

struct alloc_probes {
	struct alloc_sample_bpf *skel;
	struct probed *procs;
	size_t n_procs;
	unsigned n_cpus;
};

/* The programs for one allocator function: entry, return (NULL: none). */
static void progs_for(struct alloc_sample_bpf *skel, enum alloc_fn fn, struct bpf_program **entry,
		      struct bpf_program **ret)
{
	*ret = NULL;
	switch (fn) {
	case ALLOC_FN_MALLOC:
		*entry = skel->progs.malloc_entry;
		*ret = skel->progs.malloc_return;
		break;
	case ALLOC_FN_CALLOC:
		*entry = skel->progs.calloc_entry;
		*ret = skel->progs.calloc_return;
		break;
	case ALLOC_FN_REALLOC:
		*entry = skel->progs.realloc_entry;
		*ret = skel->progs.realloc_return;
		break;
	case ALLOC_FN_POSIX_MEMALIGN:
		*entry = skel->progs.posix_memalign_entry;
		*ret = skel->progs.posix_memalign_return;
		break;
	case ALLOC_FN_ALIGNED_ALLOC:
	case ALLOC_FN_MEMALIGN:
		*entry = skel->progs.aligned_entry;
		*ret = skel->progs.aligned_return;
		break;
	case ALLOC_FN_VALLOC:
	case ALLOC_FN_PVALLOC:
		*entry = skel->progs.valloc_entry;
		*ret = skel->progs.aligned_return;
		break;
	case ALLOC_FN_FREE:
		*entry = skel->progs.free_entry;
		break;
	default: /* reallocarray: only glibc's is known, and it is not probed */
		*entry = NULL;
		break;
	}
}

static int add_link(struct probed *p, struct bpf_link *l)
{
	if (p->n_links == p->cap_links) {
		size_t cap = p->cap_links ? 2 * p->cap_links : 16;
		struct bpf_link **links = realloc(p->links, cap * sizeof(*links));

		if (!links) {
			bpf_link__destroy(l);
			return -ENOMEM;
		}
		p->links = links;
		p->cap_links = cap;
	}
	p->links[p->n_links++] = l;
	return 0;
}

static int attach_one(struct probed *p, struct bpf_program *prog, uint64_t offset, bool retprobe)
{
	LIBBPF_OPTS(bpf_uprobe_opts, o, .retprobe = retprobe);
	struct bpf_link *l = bpf_program__attach_uprobe_opts(prog, (pid_t)p->target.tgid,
							     p->target.attach_path, offset, &o);

	if (!l)
		return -errno;
	return add_link(p, l);
}

/* Where a function's return probe goes: at its entry probe when the return
 * address is still on top of the stack there (one trap serves both, and it
 * is an emulated one), else at the entry. */
static uint32_t return_offset(const struct alloc_fn_site *s)
{
	return s->entry_point.stack_intact ? s->entry_point.offset : 0;
}

static int attach_process(struct alloc_sample_bpf *skel, struct probed *p)
{
	for (int f = 0; f < ALLOC_FN_COUNT; f++) {
		const struct alloc_fn_site *s = &p->target.fn[f];
		struct bpf_program *entry, *ret;
		int err;

		if (!s->present)
			continue;
		progs_for(skel, (enum alloc_fn)f, &entry, &ret);
		if (!entry)
			continue;
		/* The return probe first: an entry seen without its return
		 * would leave the thread's call depth off by one. */
		err = ret ? attach_one(p, ret, s->file_offset + return_offset(s), true) : 0;
		err = err ? err
			  : attach_one(p, entry, s->file_offset + s->entry_point.offset, false);
		if (err) {
			fprintf(stderr, "pipeline: process %u: cannot probe %s in %s: %s\n",
				p->target.tgid, alloc_fn__name((enum alloc_fn)f), p->target.path,
				strerror(-err));
			return err;
		}
	}
	return 0;
}

static void detach_process(struct probed *p)
{
	for (size_t i = 0; i < p->n_links; i++)
		bpf_link__destroy(p->links[i]);
	free(p->links);
	p->links = NULL;
	p->n_links = p->cap_links = 0;
}

/* -ln((k + 0.5) / N) in 16.16 fixed point: quantiles of Exp(1). */
static void fill_exp_table(volatile uint32_t *t)
{
	for (unsigned k = 0; k < ALLOC_SAMPLE_EXP_TABLE; k++)
		t[k] = (uint32_t)lround(-log((k + 0.5) / ALLOC_SAMPLE_EXP_TABLE) * 65536.0);
}

int alloc_probes__new(const struct alloc_probes_opts *opts, struct alloc_probes **out)
{
	struct alloc_probes *ap = calloc(1, sizeof(*ap));
	int err;

	*out = NULL;
	if (!ap)
		return -ENOMEM;
	ap->n_cpus = opts->n_cpus;
	ap->procs = calloc(opts->n_pids ? opts->n_pids : 1, sizeof(*ap->procs));
	ap->skel = alloc_sample_bpf__open();
	if (!ap->procs || !ap->skel) {
		err = ap->procs ? -errno : -ENOMEM;
		fprintf(stderr, "pipeline: cannot open the allocation BPF object: %s\n",
			strerror(-err));
		goto fail;
	}
	ap->skel->rodata->sample_bytes = opts->sample_bytes ? opts->sample_bytes : 1;
	ap->skel->rodata->wakeup_bytes = opts->wakeup_bytes;
	fill_exp_table(ap->skel->rodata->exp_table);
	bpf_map__set_max_entries(ap->skel->maps.tracked, opts->max_tracked);
	bpf_map__set_max_entries(ap->skel->maps.rings, opts->n_cpus);
	err = bpf_map__reuse_fd(ap->skel->maps.rings, opts->rings_map_fd);
	if (err) {
		fprintf(stderr, "pipeline: cannot share the rings with the allocation probes: %s\n",
			strerror(-err));
		goto fail;
	}
	err = alloc_sample_bpf__load(ap->skel);
	if (err) {
		fprintf(stderr, "pipeline: cannot load the allocation BPF programs: %s\n",
			strerror(-err));
		goto fail;
	}
	for (unsigned i = 0; i < opts->n_pids; i++) {
		struct probed *p = &ap->procs[ap->n_procs];
		char why[512];

		err = alloc_target__find(opts->pids[i], &p->target, why, sizeof(why));
		if (err) {
			fprintf(stderr, "pipeline: --pid %u: no allocation profile: %s\n",
				opts->pids[i], why);
			continue;
		}
		err = attach_process(ap->skel, p);
		if (err) {
			detach_process(p);
			continue;
		}
		ap->n_procs++;
	}
	if (!ap->n_procs) {
		fprintf(stderr, "pipeline: no process could be probed for allocations\n");
		err = -ENOENT;
		goto fail;
	}
	*out = ap;
	return 0;
fail:
	alloc_probes__free(ap);
	return err;
}

void alloc_probes__stop(struct alloc_probes *ap)
{
	for (size_t i = 0; ap && i < ap->n_procs; i++)
		detach_process(&ap->procs[i]);
}

void alloc_probes__free(struct alloc_probes *ap)
{
	if (!ap)
		return;
	alloc_probes__stop(ap);
	alloc_sample_bpf__destroy(ap->skel);
	free(ap->procs);
	free(ap);
}

int alloc_probes__read_stats(const struct alloc_probes *ap, struct alloc_sample_stats *out)
{
	struct alloc_sample_stats *per = calloc(ap->n_cpus ? ap->n_cpus : 1, sizeof(*per));
	uint32_t zero = 0;
	int err;

	memset(out, 0, sizeof(*out));
	if (!per)
		return -ENOMEM;
	err = bpf_map__lookup_elem(ap->skel->maps.stats, &zero, sizeof(zero), per,
				   ap->n_cpus * sizeof(*per), 0);
	for (unsigned c = 0; !err && c < ap->n_cpus; c++) {
		const uint64_t *src = (const uint64_t *)&per[c];
		uint64_t *dst = (uint64_t *)out;

		for (size_t k = 0; k < sizeof(*out) / sizeof(uint64_t); k++)
			dst[k] += src[k];
	}
	free(per);
	return err;
}

int alloc_probes__read_bpf_stats(const struct alloc_probes *ap, uint64_t *run_ns, uint64_t *run_cnt)
{
	struct bpf_program *prog;

	*run_ns = *run_cnt = 0;
	bpf_object__for_each_program (prog, ap->skel->obj) {
		struct bpf_prog_info info = {0};
		uint32_t len = sizeof(info);

		if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len))
			return -errno;
		*run_ns += info.run_time_ns;
		*run_cnt += info.run_cnt;
	}
	return 0;
}

void alloc_probes__describe(const struct alloc_probes *ap, FILE *f, const char *indent)
{
	for (size_t i = 0; i < ap->n_procs; i++) {
		const struct alloc_target *t = &ap->procs[i].target;

		fprintf(f, "%sprocess %u: %s allocator in %s%s\n", indent, t->tgid, t->kind,
			t->path, t->in_executable ? " (the executable)" : "");
		for (int fn = 0; fn < ALLOC_FN_COUNT; fn++) {
			const struct alloc_fn_site *s = &t->fn[fn];

			if (s->present && fn != ALLOC_FN_FREE)
				fprintf(f, "%s  %-15s probe %s; return probe +%u\n", indent,
					alloc_fn__name((enum alloc_fn)fn), s->entry_point.why,
					return_offset(s));
			else if (s->present)
				fprintf(f, "%s  %-15s probe %s\n", indent,
					alloc_fn__name((enum alloc_fn)fn), s->entry_point.why);
			else if (s->skipped)
				fprintf(f, "%s  %-15s not probed: %s\n", indent,
					alloc_fn__name((enum alloc_fn)fn), s->skipped);
		}
	}
}

void alloc_probes__print_stats(const struct alloc_probes *ap, FILE *f)
{
	struct alloc_sample_stats st;
	uint64_t run_ns = 0, run_cnt = 0;

	if (!ap || alloc_probes__read_stats(ap, &st))
		return;
	alloc_probes__read_bpf_stats(ap, &run_ns, &run_cnt);
	fprintf(f,
		"  allocations                %llu calls (%llu nested, %llu failed), %llu "
		"sampled; %llu frees, %llu of tracked blocks\n",
		(unsigned long long)st.calls, (unsigned long long)st.nested,
		(unsigned long long)st.failed, (unsigned long long)st.sampled,
		(unsigned long long)st.frees, (unsigned long long)st.frees_tracked);
	fprintf(f,
		"  allocation drops           %llu not tracked (map full), %llu ring full, "
		"%llu no ring, %llu no thread state, %llu returns without entry, %llu stack "
		"errors\n",
		(unsigned long long)st.tracked_full, (unsigned long long)st.ring_full,
		(unsigned long long)st.no_ring, (unsigned long long)st.no_task_state,
		(unsigned long long)st.unmatched_ret, (unsigned long long)st.stack_failed);
	if (run_cnt)
		fprintf(f, "  allocation BPF run time    %.3f s over %llu runs (%.0f ns per run)\n",
			(double)run_ns / 1e9, (unsigned long long)run_cnt,
			(double)run_ns / (double)run_cnt);
}

#define LIVE_BATCH 4096

int64_t alloc_probes__for_each_live(const struct alloc_probes *ap,
				    void (*fn)(uint32_t tgid, const struct alloc_val *v, void *arg),
				    void *arg)
{
	struct alloc_key *keys = malloc(LIVE_BATCH * sizeof(*keys));
	struct alloc_val *vals = malloc(LIVE_BATCH * sizeof(*vals));
	int fd = bpf_map__fd(ap->skel->maps.tracked);
	struct alloc_key in = {0}, outb = {0}; /* batch tokens: key-sized */
	int64_t visited = 0;
	bool first = true;
	int err = 0;

	if (!keys || !vals) {
		free(keys);
		free(vals);
		return -ENOMEM;
	}
	for (;;) {
		__u32 count = LIVE_BATCH;

		err = bpf_map_lookup_batch(fd, first ? NULL : &in, &outb, keys, vals, &count, NULL);
		err = err ? -errno : 0;
		for (__u32 i = 0; i < count; i++)
			fn(keys[i].tgid, &vals[i], arg);
		visited += count;
		if (err)
			break;
		in = outb;
		first = false;
	}
	free(keys);
	free(vals);
	return err == -ENOENT ? visited : err;
}
