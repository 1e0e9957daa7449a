/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Allocation probes (see alloc_probes.h). Per target process: find its
 * allocator (alloc_target.c), then attach, for each function that file
 * defines, the entry program at the chosen probe point and the return
 * program at the entry (a uretprobe must see the return address on top of
 * the stack), and free's program at its probe point. Uprobes are attached
 * per process (pid filter in the kernel), so other processes sharing the
 * library pay nothing.
 *
 * Where the kernel has uprobe sessions, malloc and calloc are attached as
 * one session program instead (bpf/alloc_sample.bpf.c says why): libbpf 1.1
 * knows neither the attach type nor the link, so the type is looked up in
 * the kernel's BTF and the link made with the bpf syscall. A session that
 * cannot be attached falls back to the entry and return programs.
 */
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "alloc_probes.h"
#include "alloc_sample.skel.h"
#include "alloc_target.h"
#include "bpf_run_stats.h"

struct probed {
	struct alloc_target target;
	pid_t attach_pid; /* the process, or -1: every process mapping the file */
	struct bpf_link **links;
	size_t n_links, cap_links;
	int session_fds[2];	      /* malloc's and calloc's session links, or -1 */
	bool session[ALLOC_FN_COUNT]; /* the function is probed by a session */
};

struct alloc_probes {
	struct alloc_sample_bpf *skel;
	struct probed *procs;
	size_t n_procs;
	unsigned n_cpus;
	uint32_t session_type;	     /* BPF_TRACE_UPROBE_SESSION, or 0 without it */
	uint64_t stopped_ns;	     /* wall clock of the first stop, 0 while running */
	struct lost_seen *lost_seen; /* see alloc_probes__drain_lost() */
	size_t lost_seen_cap;
	struct bpf_link *mmap_links[3]; /* the syscall tracepoints, when attached */
	char mmap_why[160];		/* why anonymous mmap is not tracked, or "" */
};

/* The kernel's value of BPF_TRACE_UPROBE_SESSION, from its BTF, or 0. */
static uint32_t uprobe_session_type(void)
{
	struct btf *btf = btf__load_vmlinux_btf();
	uint32_t value = 0;
	int id;

	if (!btf)
		return 0;
	id = btf__find_by_name_kind(btf, "bpf_attach_type", BTF_KIND_ENUM);
	if (id > 0) {
		const struct btf_type *t = btf__type_by_id(btf, id);
		const struct btf_enum *e = btf_enum(t);

		for (int i = 0; i < btf_vlen(t); i++)
			if (!strcmp(btf__name_by_offset(btf, e[i].name_off),
				    "BPF_TRACE_UPROBE_SESSION"))
				value = (uint32_t)e[i].val;
	}
	btf__free(btf);
	return value;
}

/* BPF_LINK_CREATE's uprobe_multi attributes (the layout of the kernel's
 * union bpf_attr; Debian's 6.1 headers predate them). */
struct uprobe_multi_link_attr {
	uint32_t prog_fd, target_fd, attach_type, flags;
	uint64_t path, offsets, ref_ctr_offsets, cookies;
	uint32_t cnt, multi_flags, pid, pad;
};

/* Attaches prog as a uprobe session at offset of path for pid. Returns the
 * link fd or -errno. */
static int session_link(const struct alloc_probes *ap, struct bpf_program *prog, const char *path,
			uint64_t offset, uint32_t pid)
{
	struct uprobe_multi_link_attr a = {
		.prog_fd = (uint32_t)bpf_program__fd(prog),
		.attach_type = ap->session_type,
		.path = (uint64_t)(uintptr_t)path,
		.offsets = (uint64_t)(uintptr_t)&offset,
		.cnt = 1,
		.pid = pid,
	};
	long fd = syscall(__NR_bpf, BPF_LINK_CREATE, &a, sizeof(a));

	return fd < 0 ? -errno : (int)fd;
}

static void attach_mmap(struct alloc_probes *ap, const struct alloc_probes_opts *opts);

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
	struct bpf_link *l = bpf_program__attach_uprobe_opts(prog, p->attach_pid,
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

static int attach_process(const struct alloc_probes *ap, struct probed *p)
{
	struct alloc_sample_bpf *skel = ap->skel;

	for (int f = 0; f < ALLOC_FN_COUNT; f++) {
		const struct alloc_fn_site *s = &p->target.fn[f];
		struct bpf_program *entry, *ret;
		int err;

		if (!s->present)
			continue;
		if (ap->session_type && (f == ALLOC_FN_MALLOC || f == ALLOC_FN_CALLOC)) {
			int fd = session_link(ap,
					      f == ALLOC_FN_MALLOC ? skel->progs.malloc_session
								   : skel->progs.calloc_session,
					      p->target.attach_path,
					      s->file_offset + return_offset(s),
					      /* 0: every process (uprobe_multi's "any") */
					      p->attach_pid < 0 ? 0 : (uint32_t)p->attach_pid);

			if (fd >= 0) {
				p->session_fds[f == ALLOC_FN_CALLOC] = fd;
				p->session[f] = true;
				continue;
			}
			fprintf(stderr,
				"pipeline: process %u: %s as a uprobe session: %s; entry and "
				"return probes instead\n",
				p->target.tgid, alloc_fn__name((enum alloc_fn)f), strerror(-fd));
		}
		progs_for(skel, (enum alloc_fn)f, &entry, &ret);
		if (!entry)
			continue;
		/* The return probe first: an entry seen without its return
		 * would leave the thread's call depth off by one. */
		err = ret ? attach_one(p, ret, s->file_offset + return_offset(s), true) : 0;
		if (!err) {
			err = attach_one(p, entry, s->file_offset + s->entry_point.offset, false);
			if (err && err != -ESRCH && s->entry_point.offset) {
				/* The kernel refused the chosen instruction: the
				 * entry, single-stepped, rather than no profile. */
				fprintf(stderr,
					"pipeline: process %u: %s: probe at +%u refused (%s); at "
					"the entry instead\n",
					p->target.tgid, alloc_fn__name((enum alloc_fn)f),
					s->entry_point.offset, strerror(-err));
				err = attach_one(p, entry, s->file_offset, false);
			}
		}
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
	for (int i = 0; i < 2; i++) {
		if (p->session_fds[i] >= 0)
			close(p->session_fds[i]);
		p->session_fds[i] = -1;
	}
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
	ap->session_type = uprobe_session_type();
	if (ap->session_type) {
		bpf_program__set_expected_attach_type(ap->skel->progs.malloc_session,
						      ap->session_type);
		bpf_program__set_expected_attach_type(ap->skel->progs.calloc_session,
						      ap->session_type);
	} else {
		bpf_program__set_autoload(ap->skel->progs.malloc_session, false);
		bpf_program__set_autoload(ap->skel->progs.calloc_session, false);
	}
	ap->skel->rodata->sample_bytes = opts->sample_bytes ? opts->sample_bytes : 1;
	ap->skel->rodata->self_tgid = (uint32_t)getpid();
	ap->skel->rodata->all_processes = opts->all;
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
	if (opts->all) {
		struct probed *p = &ap->procs[0];
		char why[512];

		/* The C library as the agent maps it: the host's. Attached for
		 * pid -1 through its path (the file, not one process's view). */
		p->session_fds[0] = p->session_fds[1] = -1;
		p->attach_pid = -1;
		err = alloc_target__find_libc((uint32_t)getpid(), &p->target, why, sizeof(why));
		if (err) {
			fprintf(stderr, "pipeline: --alloc-all: %s\n", why);
			goto fail;
		}
		snprintf(p->target.attach_path, sizeof(p->target.attach_path), "%s",
			 p->target.path);
		err = attach_process(ap, p);
		if (err) {
			detach_process(p);
			goto fail;
		}
		ap->n_procs = 1;
	}
	for (unsigned i = 0; !opts->all && i < opts->n_pids; i++) {
		struct probed *p = &ap->procs[ap->n_procs];
		char why[512];

		memset(p, 0, sizeof(*p)); /* the slot of a pid that failed is reused */
		p->session_fds[0] = p->session_fds[1] = -1;
		p->attach_pid = (pid_t)opts->pids[i];
		err = alloc_target__find(opts->pids[i], &p->target, why, sizeof(why));
		if (err) {
			fprintf(stderr, "pipeline: --pid %u: no allocation profile: %s\n",
				opts->pids[i], why);
			continue;
		}
		err = attach_process(ap, p);
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
	attach_mmap(ap, opts);
	if (ap->mmap_why[0])
		fprintf(stderr, "pipeline: anonymous mmap not tracked: %s\n", ap->mmap_why);
	*out = ap;
	return 0;
fail:
	alloc_probes__free(ap);
	return err;
}

/* Marks the file at path as one whose own mmaps are the allocator's; its
 * identity goes to *key. Returns 0 or -errno. */
static int add_alloc_file(struct alloc_probes *ap, const char *path, struct alloc_file_key *key)
{
	struct alloc_file_key k = {0};
	struct stat st;
	uint8_t one = 1;

	if (stat(path, &st))
		return -errno;
	k.ino = (uint64_t)st.st_ino;
	k.dev = (uint32_t)(major(st.st_dev) << 20 | minor(st.st_dev));
	*key = k;
	return bpf_map__update_elem(ap->skel->maps.alloc_files, &k, sizeof(k), &one, sizeof(one),
				    BPF_ANY);
}

/* Gives the BPF side the executable ranges of process tgid's files in
 * files[0..n) (its allocator and libc), read from /proc/PID/maps. */
static void add_alloc_texts(struct alloc_probes *ap, uint32_t tgid,
			    const struct alloc_file_key *files, int n)
{
	struct alloc_text text = {0};
	char path[64], line[512];
	int k = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%u/maps", tgid);
	f = fopen(path, "re");
	if (!f)
		return;
	while (k < ALLOC_TEXT_RANGES && fgets(line, sizeof(line), f)) {
		unsigned long long start, end, inode;
		unsigned ma, mi;
		char perms[8];

		if (sscanf(line, "%llx-%llx %7s %*s %x:%x %llu", &start, &end, perms, &ma, &mi,
			   &inode) != 6 ||
		    perms[2] != 'x')
			continue;
		for (int i = 0; i < n; i++) {
			if (files[i].ino == inode && files[i].dev == (ma << 20 | mi)) {
				text.start[k] = start;
				text.end[k++] = end;
				break;
			}
		}
	}
	fclose(f);
	if (k)
		bpf_map__update_elem(ap->skel->maps.alloc_texts, &tgid, sizeof(tgid), &text,
				     sizeof(text), BPF_ANY);
}

#define TRACEFS "/sys/kernel/tracing"

/*
 * Anonymous mmap and munmap of the targets, through the syscall
 * tracepoints (the agent has no kprobes or fentry on this kind of host).
 * Their ids come from tracefs, which is not always mounted: it is mounted
 * at its usual place if need be. Failing that, allocations that bypass the
 * allocator are not tracked, and the self-stats say why.
 */
static void attach_mmap(struct alloc_probes *ap, const struct alloc_probes_opts *opts)
{
	static const char *const tps[3] = {"sys_enter_mmap", "sys_exit_mmap", "sys_enter_munmap"};
	struct bpf_program *progs[3] = {ap->skel->progs.mmap_enter, ap->skel->progs.mmap_exit,
					ap->skel->progs.munmap_enter};
	uint8_t one = 1;

	(void)opts;
	for (size_t i = 0; i < ap->n_procs; i++) {
		const struct probed *p = &ap->procs[i];

		if (p->attach_pid <= 0)
			continue;
		/* An allocator linked into the executable cannot be told from
		 * the program by where its mmap calls come from. */
		if (p->target.in_executable) {
			fprintf(stderr,
				"pipeline: process %u: anonymous mmap not tracked (its allocator "
				"is linked into the executable)\n",
				p->target.tgid);
			continue;
		}
		bpf_map__update_elem(ap->skel->maps.targets, &p->attach_pid, sizeof(uint32_t), &one,
				     sizeof(one), BPF_ANY);
	}
	for (size_t i = 0; i < ap->n_procs; i++) {
		struct alloc_file_key files[2];
		struct alloc_target libc;
		char why[256];
		int n = 0;

		if (!add_alloc_file(ap, ap->procs[i].target.attach_path, &files[n]))
			n++;
		if (ap->procs[i].attach_pid <= 0)
			continue;
		if (!alloc_target__find_libc((uint32_t)ap->procs[i].attach_pid, &libc, why,
					     sizeof(why)) &&
		    !add_alloc_file(ap, libc.attach_path, &files[n]))
			n++;
		add_alloc_texts(ap, (uint32_t)ap->procs[i].attach_pid, files, n);
	}
	if (access(TRACEFS "/events/syscalls", F_OK) &&
	    mount("tracefs", TRACEFS, "tracefs", 0, NULL) && errno != EBUSY) {
		snprintf(ap->mmap_why, sizeof(ap->mmap_why), "cannot mount tracefs on %s: %s",
			 TRACEFS, strerror(errno));
		return;
	}
	for (int i = 0; i < 3; i++) {
		ap->mmap_links[i] = bpf_program__attach_tracepoint(progs[i], "syscalls", tps[i]);
		if (!ap->mmap_links[i]) {
			snprintf(ap->mmap_why, sizeof(ap->mmap_why),
				 "cannot attach to syscalls:%s: %s", tps[i], strerror(errno));
			for (int j = 0; j < i; j++) {
				bpf_link__destroy(ap->mmap_links[j]);
				ap->mmap_links[j] = NULL;
			}
			return;
		}
	}
}

void alloc_probes__stop(struct alloc_probes *ap)
{
	for (int i = 0; ap && i < 3; i++) {
		bpf_link__destroy(ap->mmap_links[i]);
		ap->mmap_links[i] = NULL;
	}
	if (ap && !ap->stopped_ns) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ap->stopped_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	}
	for (size_t i = 0; ap && i < ap->n_procs; i++)
		detach_process(&ap->procs[i]);
}

uint64_t alloc_probes__stopped_ns(const struct alloc_probes *ap)
{
	return ap ? ap->stopped_ns : 0;
}

void alloc_probes__free(struct alloc_probes *ap)
{
	if (!ap)
		return;
	alloc_probes__stop(ap);
	alloc_sample_bpf__destroy(ap->skel);
	free(ap->lost_seen);
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
	return bpf_run_stats__sum(ap->skel->obj, run_ns, run_cnt);
}

void alloc_probes__describe(const struct alloc_probes *ap, FILE *f, const char *indent)
{
	for (size_t i = 0; i < ap->n_procs; i++) {
		const struct alloc_target *t = &ap->procs[i].target;

		if (ap->procs[i].attach_pid < 0)
			fprintf(f, "%severy process mapping %s (--alloc-all)\n", indent, t->path);
		else
			fprintf(f, "%sprocess %u: %s allocator in %s%s\n", indent, t->tgid, t->kind,
				t->path, t->in_executable ? " (the executable)" : "");
		for (int fn = 0; fn < ALLOC_FN_COUNT; fn++) {
			const struct alloc_fn_site *s = &t->fn[fn];

			if (s->present && ap->procs[i].session[fn])
				fprintf(f, "%s  %-15s uprobe session at +%u (%s)\n", indent,
					alloc_fn__name((enum alloc_fn)fn), return_offset(s),
					s->entry_point.why);
			else if (s->present && fn != ALLOC_FN_FREE)
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

/* The counters and BPF run time, for the self-stats. Returns false
 * without them (no probes, or the map could not be read). */
static bool read_all_stats(const struct alloc_probes *ap, struct alloc_sample_stats *st,
			   uint64_t *run_ns, uint64_t *run_cnt)
{
	*run_ns = *run_cnt = 0;
	if (!ap || alloc_probes__read_stats(ap, st))
		return false;
	alloc_probes__read_bpf_stats(ap, run_ns, run_cnt);
	return true;
}

void alloc_probes__print_stats(const struct alloc_probes *ap, FILE *f)
{
	struct alloc_sample_stats st;
	uint64_t run_ns, run_cnt;

	if (!read_all_stats(ap, &st, &run_ns, &run_cnt))
		return;
	fprintf(f,
		"  allocations                %llu calls (%llu nested, %llu failed), %llu "
		"sampled; %llu frees, %llu of them of tracked blocks (the others, of blocks not "
		"sampled or allocated before the agent started, ignored)\n",
		(unsigned long long)st.calls, (unsigned long long)st.nested,
		(unsigned long long)st.failed, (unsigned long long)st.sampled,
		(unsigned long long)st.frees, (unsigned long long)st.frees_tracked);
	fprintf(f,
		"  allocation drops           %llu not tracked (map full), %llu ring full (%llu of "
		"them lost, the rest counted), %llu no ring, %llu no thread state, %llu returns "
		"without entry, %llu stack errors; %llu frees never seen, reported late\n",
		(unsigned long long)st.tracked_full, (unsigned long long)st.ring_full,
		(unsigned long long)st.lost_full, (unsigned long long)st.no_ring,
		(unsigned long long)st.no_task_state, (unsigned long long)st.unmatched_ret,
		(unsigned long long)st.stack_failed, (unsigned long long)st.stale_replaced);
	if (ap->mmap_why[0])
		fprintf(f, "  anonymous mmap             not tracked: %s\n", ap->mmap_why);
	else
		fprintf(f,
			"  anonymous mmap             %llu by the programs (%llu failed), %llu by "
			"the allocator or libc (left out; %llu of them callers not known)\n",
			(unsigned long long)st.mmaps, (unsigned long long)st.mmaps_failed,
			(unsigned long long)st.mmaps_internal,
			(unsigned long long)st.mmaps_unknown);
	if (run_cnt)
		fprintf(f, "  allocation BPF run time    %.3f s over %llu runs (%.0f ns per run)\n",
			(double)run_ns / 1e9, (unsigned long long)run_cnt,
			(double)run_ns / (double)run_cnt);
}

int alloc_probes__site_stack(const struct alloc_probes *ap, uint32_t tgid, uint64_t site,
			     struct alloc_sample_rec *out)
{
	struct alloc_site_key k = {.tgid = tgid, .site = site};

	return bpf_map__lookup_elem(ap->skel->maps.site_stacks, &k, sizeof(k), out, sizeof(*out), 0)
		       ? -ENOENT
		       : 0;
}

void alloc_probes__write_json(const struct alloc_probes *ap, FILE *f)
{
	struct alloc_sample_stats st;
	uint64_t run_ns, run_cnt;

	if (!read_all_stats(ap, &st, &run_ns, &run_cnt))
		return;
	fprintf(f,
		",\n  \"alloc\": {\"processes\": %zu, \"sample_bytes\": %llu, \"calls\": %llu, "
		"\"nested\": %llu, \"failed\": %llu, \"sampled\": %llu, \"frees\": %llu, "
		"\"frees_tracked\": %llu, \"tracked_full\": %llu, \"ring_full\": %llu, "
		"\"lost\": %llu, \"no_task_state\": %llu, \"unmatched_returns\": %llu, "
		"\"stack_errors\": %llu, \"stale_replaced\": %llu, \"bpf_run_ns\": %llu, "
		"\"bpf_runs\": %llu}",
		ap->n_procs, (unsigned long long)ap->skel->rodata->sample_bytes,
		(unsigned long long)st.calls, (unsigned long long)st.nested,
		(unsigned long long)st.failed, (unsigned long long)st.sampled,
		(unsigned long long)st.frees, (unsigned long long)st.frees_tracked,
		(unsigned long long)st.tracked_full, (unsigned long long)st.ring_full,
		(unsigned long long)st.lost_full, (unsigned long long)st.no_task_state,
		(unsigned long long)st.unmatched_ret, (unsigned long long)st.stack_failed,
		(unsigned long long)st.stale_replaced, (unsigned long long)run_ns,
		(unsigned long long)run_cnt);
}

/* The counts of `lost` already folded in, by key: the kernel's counts only
 * grow (deleting a key could race with a program adding to it), and each
 * read folds in the difference. Open addressing, sized for the map. */
struct lost_seen {
	struct alloc_lost_key key;
	uint64_t count;
	bool used;
};

static struct lost_seen *lost_seen_find(struct alloc_probes *ap, const struct alloc_lost_key *k)
{
	size_t mask = ap->lost_seen_cap - 1;
	uint64_t h =
		k->site ^ ((uint64_t)k->tgid << 32 | k->kind) ^ k->size * 0x9e3779b97f4a7c15ull;

	for (size_t i = (size_t)(h ^ h >> 29) & mask;; i = (i + 1) & mask) {
		struct lost_seen *e = &ap->lost_seen[i];

		if (!e->used || !memcmp(&e->key, k, sizeof(*k)))
			return e;
	}
}

int64_t alloc_probes__drain_lost(struct alloc_probes *ap,
				 void (*fn)(const struct alloc_lost_key *k, uint64_t count,
					    void *arg),
				 void *arg)
{
	int fd = bpf_map__fd(ap->skel->maps.lost);
	size_t cap = bpf_map__max_entries(ap->skel->maps.lost);
	struct alloc_lost_key key, next;
	int64_t folded = 0;
	bool first = true;

	while (!bpf_map_get_next_key(fd, first ? NULL : &key, &next)) {
		struct lost_seen *e;
		uint64_t count;

		first = false;
		key = next;
		if (bpf_map_lookup_elem(fd, &key, &count))
			continue;
		if (!ap->lost_seen) {
			/* Twice the map's entries: the probe always ends. */
			ap->lost_seen_cap = 1;
			while (ap->lost_seen_cap < 2 * cap)
				ap->lost_seen_cap <<= 1;
			ap->lost_seen = calloc(ap->lost_seen_cap, sizeof(*ap->lost_seen));
			if (!ap->lost_seen)
				return -ENOMEM;
		}
		e = lost_seen_find(ap, &key);
		if (!e->used) {
			e->used = true;
			e->key = key;
		}
		if (count > e->count) {
			fn(&key, count - e->count, arg);
			e->count = count;
			folded++;
		}
	}
	return folded;
}

#define LIVE_BATCH 4096

int64_t alloc_probes__for_each_live(const struct alloc_probes *ap,
				    bool (*fn)(uint32_t tgid, const struct alloc_val *v, void *arg),
				    void *arg)
{
	struct alloc_key *drop = NULL;
	size_t n_drop = 0, cap_drop = 0;
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
		for (__u32 i = 0; i < count; i++) {
			if (!fn(keys[i].tgid, &vals[i], arg))
				continue;
			if (n_drop == cap_drop) {
				size_t c = cap_drop ? 2 * cap_drop : 1024;
				struct alloc_key *d = realloc(drop, c * sizeof(*d));

				if (!d)
					continue; /* dropped at a later scan */
				drop = d;
				cap_drop = c;
			}
			drop[n_drop++] = keys[i];
		}
		visited += count;
		if (err)
			break;
		in = outb;
		first = false;
	}
	/* After the walk: deleting during it could make it skip or repeat. */
	for (size_t i = 0; i < n_drop; i++)
		bpf_map_delete_elem(fd, &drop[i]);
	free(drop);
	free(keys);
	free(vals);
	return err == -ENOENT ? visited : err;
}
