/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * OTLP Profiles encoder: struct profile[] -> ExportProfilesServiceRequest[]
 * (opentelemetry-proto v1.11.0, profiles v1development; uncompressed, since
 * compression is the exporter's).
 *
 * Shape of a request (see ../shared/reference/otlp-profiles.md):
 *
 *   resource_profiles[r]      one per process (pid, executable name and path,
 *                             container id, host name, then the agent's own
 *                             resource attributes), schema_url OTLP_SCHEMA_URL
 *     scope_profiles[0]       scope = agent name and version
 *       profiles[k]           one per interval in which the process has
 *                             samples, per sample type (CPU: samples/count,
 *                             period cpu/nanoseconds = 1e9 / Hz)
 *         samples             stack_index + attributes thread.id, thread.name
 *                             (+ cpu.logical_number with timestamps)
 *   dictionary                one for the request, hash-consed (otlp_dict.c)
 *
 * Decisions:
 *
 * - Resource identity is the tuple of its attributes (pid, executable name and
 *   path, container id, host name): a pid reused by another executable in a
 *   later interval gets a resource of its own. Executable name and path come
 *   from profile.processes; a process without an entry is named by its
 *   process name (pcomm) and has no path. The idle task (tgid 0) is a
 *   resource of its own: process.pid 0, process.executable.name "[idle]".
 *   The agent's resource attributes (opts) are added to every resource, the
 *   last of several with one key winning; on a clash with ours, ours win for
 *   process.* and theirs for everything else (host.name, container.id), so no
 *   key appears twice.
 *
 * - Sample shape, per interval, the same for all its samples: with
 *   opts->timestamps, times_complete, every stack's times present and a
 *   non-empty window, samples carry timestamps_unix_nano only (each counts
 *   1), one Sample per (stack, thread, CPU) with the CPU as
 *   cpu.logical_number; otherwise one aggregated value (count) per (stack,
 *   thread) and no CPU attribute. Samples of equal identity are merged.
 *   Timestamps outside [time_unix_nano, time_unix_nano + duration_nano)
 *   (a sample that raced the interval's boundary) are clamped into it, so the
 *   count is kept and the window rule holds.
 *
 * - thread.id is the kernel TID (semantic conventions define a "managed"
 *   thread id; no OS-tid attribute exists, and the reference eBPF profiler
 *   does the same), thread.name the task's comm. ScopeProfiles carries the
 *   same schema_url as its resource, for the sample and location attributes.
 *   profile_id (optional) is not set; the drop counts have no semantic
 *   convention and are not exported here.
 *
 * - A stack with no frames (its capture failed) is kept with stack_index 0,
 *   the empty stack the spec defines as stack_table[0], rather than with an
 *   invented frame. Stacks with count 0 are skipped.
 *
 * - No samples at all (no profiles, or only empty ones) gives zero requests:
 *   the spec says not to send empty envelopes.
 *
 * - Requests: when the whole request packs within opts->max_request_bytes (or
 *   there is no limit) it is emitted as built; else otlp_split.c cuts it by
 *   resource. All the given intervals go into the same request(s).
 *
 * Model: dictionary entries, profiles and samples are compact records
 * (otlp_dict.c; struct otlp_prof, otlp_smp) that otlp_wire.c serializes
 * directly; resources are protobuf-c messages. Samples, the bulk, live in one
 * array, regrouped by profile once all intervals are in, so each later pass
 * reads memory in order.
 *
 * Context (struct otlp_encoder): what a request's dictionary is made of, as
 * far as it does not depend on the request, is kept in a store
 * (otlp_store.c) across the calls of one context, with a frame cache in
 * front, so a frame seen in an earlier interval costs one probe; and the
 * call's memory (arena chunks, arrays, hash slots) is reset rather than
 * freed, so a steady-state call does not fault pages in again. The output of
 * a call depends only on its input: the same bytes from a fresh context or a
 * used one. Before each call the store is started over when it holds more
 * than the context's bound (max_cache_bytes), and when its generation
 * counter would wrap. otlp__encode() runs on a context of its own.
 *
 * Cost: O(total frames + total timestamps) expected time with hash tables
 * everywhere; per frame of a stack, one frame cache probe.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "encoder.h"
#include "otlp_internal.h"

#define OTLP_DEFAULT_MAX_CACHE_BYTES (32u << 20)

struct otlp_encoder {
	struct otlp_store store;
	struct otlp_enc enc;
	size_t max_cache_bytes;
	struct otlp_encoder_stats stats;
};

/* Sample and period types per profile.signal; one Profile per sample type. */
struct otlp_signal {
	const char *signal;
	const char *sample_type, *sample_unit;
	const char *period_type, *period_unit;
};

static const struct otlp_signal signals[] = {
	{"cpu", "samples", "count", "cpu", "nanoseconds"},
	/* allocation profiles, one column each (pipeline/flush.c); period: the
	 * sampling period in bytes (../shared/reference/otlp-profiles.md) */
	{"alloc_objects", "alloc_objects", "count", "allocated_bytes", "bytes"},
	{"alloc_space", "alloc_space", "bytes", "allocated_bytes", "bytes"},
	{"inuse_objects", "inuse_objects", "count", "allocated_bytes", "bytes"},
	{"inuse_space", "inuse_space", "bytes", "allocated_bytes", "bytes"},
	/* off-CPU and lock profiles, one column each; period: 1 (each record is
	 * weighted by the 1 in N it was sampled at) */
	{"switches", "switches", "count", "context_switch", "count"},
	{"off_cpu", "off_cpu", "nanoseconds", "context_switch", "count"},
	{"contentions", "contentions", "count", "contentions", "count"},
	{"delay", "delay", "nanoseconds", "contentions", "count"},
};

static const struct otlp_signal *signal_find(const char *name)
{
	if (!name)
		return &signals[0]; /* profile.h: no signal means "cpu" */
	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
		if (strcmp(signals[i].signal, name) == 0)
			return &signals[i];
	}
	return NULL;
}

/* ---- context ---- */

/* Frees the outputs not handed over. */
static void enc_drop_out(struct otlp_enc *e)
{
	for (size_t i = 0; i < e->n_out; i++)
		free(e->out[i].data);
	free(e->out);
	e->out = NULL;
	e->n_out = e->cap_out = 0;
}

static void enc_deinit(struct otlp_enc *e)
{
	otlp_dict_deinit(&e->dict);
	strtab__deinit(&e->res_keys);
	otlp_hset_deinit(&e->smp_set);
	otlp_idmap_deinit(&e->res_by_tgid);
	otlp_idmap_deinit(&e->thread_by_tid);
	otlp_wire_deinit(&e->wire);
	free(e->threads);
	free(e->res);
	free(e->profs);
	free(e->prof_order);
	free(e->smps);
	free(e->tbuf);
	free(e->tcount);
	free(e->kbuf);
	enc_drop_out(e);
	arena__free(&e->arena);
	memset(e, 0, sizeof(*e));
}

/* A KeyValue with a string value (copied into the arena). */
static OtlpKeyValue *kv_str(struct otlp_enc *e, const char *key, const char *s, size_t len)
{
	OtlpKeyValue *kv = arena__alloc(&e->arena, sizeof(*kv));
	OtlpAnyValue *v = arena__alloc(&e->arena, sizeof(*v));
	char *k = arena__strndup(&e->arena, key, strlen(key));
	char *copy = arena__strndup(&e->arena, s, len);

	if (!kv || !v || !k || !copy)
		return NULL;
	*v = (OtlpAnyValue)OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
	v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
	v->string_value = copy;
	*kv = (OtlpKeyValue)OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
	kv->key = k;
	kv->value = v;
	return kv;
}

static OtlpKeyValue *kv_int(struct otlp_enc *e, const char *key, int64_t i)
{
	OtlpKeyValue *kv = arena__alloc(&e->arena, sizeof(*kv));
	OtlpAnyValue *v = arena__alloc(&e->arena, sizeof(*v));
	char *k = arena__strndup(&e->arena, key, strlen(key));

	if (!kv || !v || !k)
		return NULL;
	*v = (OtlpAnyValue)OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
	v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
	v->int_value = i;
	*kv = (OtlpKeyValue)OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
	kv->key = k;
	kv->value = v;
	return kv;
}

/* The agent's resource attributes, one per key (the last given wins). */
static int opt_kvs_build(struct otlp_enc *e)
{
	const struct otlp_encode_opts *o = e->opts;

	if (!o->n_resource_attrs)
		return 0;
	if (!o->resource_attrs || o->n_resource_attrs > SIZE_MAX / sizeof(*e->opt_kvs))
		return -EINVAL;
	e->opt_kvs = arena__alloc(&e->arena, o->n_resource_attrs * sizeof(*e->opt_kvs));
	if (!e->opt_kvs)
		return -ENOMEM;
	for (size_t i = 0; i < o->n_resource_attrs; i++) {
		const struct otlp_attr *a = &o->resource_attrs[i];
		bool later = false;

		if (!a->key || !a->key[0])
			continue;
		for (size_t j = i + 1; j < o->n_resource_attrs && !later; j++)
			later = o->resource_attrs[j].key &&
				!strcmp(o->resource_attrs[j].key, a->key);
		if (later)
			continue;
		const char *v = a->value ? a->value : "";
		OtlpKeyValue *kv = kv_str(e, a->key, v, strlen(v));
		if (!kv)
			return -ENOMEM;
		e->opt_kvs[e->n_opt_kvs++] = kv;
	}
	return 0;
}

/* Starts a call: the previous call's model forgotten, its memory kept. */
static int enc_begin(struct otlp_enc *e, struct otlp_store *st, const struct otlp_encode_opts *opts)
{
	arena__reset(&e->arena);
	if (e->res_keys.max) /* a table of an earlier call */
		strtab__reset(&e->res_keys, &e->arena);
	else
		strtab__init(&e->res_keys, &e->arena, UINT32_MAX - 1);
	otlp_hset_clear(&e->smp_set);
	otlp_idmap_clear(&e->res_by_tgid);
	otlp_idmap_clear(&e->thread_by_tid);
	e->opts = opts;
	e->n_res = e->n_profs = e->n_smps = e->n_threads = 0;
	e->opt_kvs = NULL;
	e->n_opt_kvs = 0;
	e->scope = (OtlpScope)OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
	/* borrowed for the call; protobuf-c only reads them */
	e->scope.name = (char *)(opts->agent_name ? opts->agent_name : "");
	e->scope.version = (char *)(opts->agent_version ? opts->agent_version : "");

	int err = otlp_dict_begin(&e->dict, st);
	if (!err)
		err = opt_kvs_build(e);
	return err;
}

/* ---- resources ---- */

static const struct profile_process *process_find(const struct profile *p, uint32_t tgid)
{
	size_t lo = 0, hi = p->processes ? p->n_processes : 0;

	while (lo < hi) { /* processes are sorted by tgid */
		size_t mid = lo + (hi - lo) / 2;

		if (p->processes[mid].tgid == tgid)
			return &p->processes[mid];
		if (p->processes[mid].tgid < tgid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* What identifies a resource: the values of its own attributes. */
struct res_id {
	uint32_t tgid;
	const char *str[4]; /* NULL or non-empty */
	size_t len[4];
};

enum { RES_NAME, RES_PATH, RES_CONTAINER, RES_HOST };

static void res_id_set(struct res_id *id, int i, const char *s, size_t len)
{
	id->str[i] = len ? s : NULL;
	id->len[i] = len;
}

static const char *const res_keys[4] = {
	[RES_NAME] = "process.executable.name",
	[RES_PATH] = "process.executable.path",
	[RES_CONTAINER] = "container.id",
	[RES_HOST] = "host.name",
};

/* Creates the resource of id at index n_res. Returns 0 or -errno. */
static int resource_new(struct otlp_enc *e, const struct res_id *id)
{
	size_t cap = 1 + 4 + e->n_opt_kvs, n = 0;
	struct otlp_res *r = arena__alloc(&e->arena, sizeof(*r));
	OtlpKeyValue **kvs = arena__alloc(&e->arena, cap * sizeof(*kvs));

	if (!r || !kvs)
		return -ENOMEM;
	memset(r, 0, sizeof(*r));
	kvs[n++] = kv_int(e, "process.pid", id->tgid);
	for (int i = 0; i < 4; i++) {
		if (id->str[i])
			kvs[n++] = kv_str(e, res_keys[i], id->str[i], id->len[i]);
	}
	for (size_t i = 0; i < n; i++) {
		if (!kvs[i])
			return -ENOMEM;
	}
	size_t n_ours = n;
	for (size_t i = 0; i < e->n_opt_kvs; i++) {
		OtlpKeyValue *kv = e->opt_kvs[i];
		size_t j;

		for (j = 0; j < n_ours && strcmp(kvs[j]->key, kv->key); j++)
			;
		if (j == n_ours)
			kvs[n++] = kv;
		else if (strncmp(kv->key, "process.", 8) != 0)
			kvs[j] = kv; /* theirs win outside process.* (host.name, container.id) */
	}

	r->resource = (OtlpResource)OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
	r->resource.attributes = kvs;
	r->resource.n_attributes = n;
	e->res[e->n_res++] = r;
	return 0;
}

/* The resource of stack st of profile p in *ridx. Returns 0 or -errno. */
static int resource_findnew(struct otlp_enc *e, const struct profile *p,
			    const struct profile_stack *st, uint32_t *ridx)
{
	uint32_t cached = otlp_idmap_get(&e->res_by_tgid, st->tgid);
	struct res_id id = {.tgid = st->tgid};
	int err;

	if (cached) {
		*ridx = cached - 1;
		return 0;
	}
	if (st->tgid == 0) {
		res_id_set(&id, RES_NAME, "[idle]", strlen("[idle]"));
	} else {
		const struct profile_process *pp = process_find(p, st->tgid);

		if (pp && pp->exe_name && pp->exe_name[0])
			res_id_set(&id, RES_NAME, pp->exe_name, strlen(pp->exe_name));
		else
			res_id_set(&id, RES_NAME, st->pcomm, strnlen(st->pcomm, sizeof(st->pcomm)));
		if (pp && pp->exe_path)
			res_id_set(&id, RES_PATH, pp->exe_path, strlen(pp->exe_path));
		if (pp && pp->container_id)
			res_id_set(&id, RES_CONTAINER, pp->container_id, strlen(pp->container_id));
	}
	if (p->hostname)
		res_id_set(&id, RES_HOST, p->hostname, strlen(p->hostname));

	/* key: tgid, then each string as its length and bytes */
	size_t klen = sizeof(id.tgid);
	for (int i = 0; i < 4; i++) {
		if (id.len[i] > SIZE_MAX / 2 - klen)
			return -E2BIG;
		klen += sizeof(id.len[i]) + id.len[i];
	}
	uint8_t *k = array__grow(e->kbuf, &e->kcap, klen, 1);
	if (!k)
		return -ENOMEM;
	e->kbuf = k;
	memcpy(k, &id.tgid, sizeof(id.tgid));
	k += sizeof(id.tgid);
	for (int i = 0; i < 4; i++) {
		memcpy(k, &id.len[i], sizeof(id.len[i]));
		k += sizeof(id.len[i]);
		if (id.len[i])
			memcpy(k, id.str[i], id.len[i]);
		k += id.len[i];
	}

	struct otlp_res **arr = array__grow(e->res, &e->cap_res, e->n_res + 1, sizeof(*arr));
	if (!arr)
		return -ENOMEM;
	e->res = arr;
	size_t before = e->res_keys.n;
	err = strtab__findnew(&e->res_keys, (const char *)e->kbuf, klen, ridx);
	if (!err && e->res_keys.n != before)
		err = resource_new(e, &id);
	if (!err)
		err = otlp_idmap_put(&e->res_by_tgid, st->tgid, *ridx + 1);
	return err;
}

/* ---- profiles and samples ---- */

/* One interval's parameters. */
struct interval {
	const struct profile *p;
	uint32_t index;
	bool timestamps;
	uint64_t lo, hi;       /* timestamps are clamped into [lo, hi] */
	int32_t types[4];      /* sample type and unit, period type and unit */
	uint32_t prof;	       /* the profile of the last stack's process */
	uint32_t last_tgid_p1; /* that process's tgid + 1; 0: none yet */
};

/* The Profile of resource ridx for interval iv, in *pidx. */
static int profile_findnew(struct otlp_enc *e, const struct interval *iv, uint32_t ridx,
			   uint32_t *pidx)
{
	struct otlp_res *r = e->res[ridx];

	if (r->last_interval == iv->index + 1) {
		*pidx = r->last_prof;
		return 0;
	}
	if (e->n_profs >= UINT32_MAX - 1)
		return -E2BIG;
	struct otlp_prof *arr = array__grow(e->profs, &e->cap_profs, e->n_profs + 1, sizeof(*arr));
	if (!arr)
		return -ENOMEM;
	e->profs = arr;
	e->profs[e->n_profs] = (struct otlp_prof){
		.res = ridx,
		.timestamps = iv->timestamps,
		.time_ns = iv->p->time_ns,
		.duration_ns = iv->p->duration_ns,
		.period = (int64_t)iv->p->period_ns, /* checked <= INT64_MAX */
		.sample_type = iv->types[0],
		.sample_unit = iv->types[1],
		.period_type = iv->types[2],
		.period_unit = iv->types[3],
	};
	*pidx = (uint32_t)e->n_profs++;
	r->n_profs++;
	r->last_interval = iv->index + 1;
	r->last_prof = *pidx;
	return 0;
}

/*
 * Samples are found by group: the samples of one (profile, stack, thread)
 * are those of one input stack (the aggregator keys stacks by thread and
 * frames), one per CPU in the timestamps shape, one in all in the aggregated
 * shape. A hash set finds a group's first sample, the others are chained
 * from it (otlp_smp.next); an input stack whose group is new creates its
 * samples without further lookups. A group seen before (two input stacks
 * with equal frames, or the same stack in another interval of the request)
 * walks its chain.
 */
struct grp_probe {
	const struct otlp_enc *e;
	const struct otlp_smp_key *key;
};

static bool grp_eq(const void *ctx, uint32_t v)
{
	const struct grp_probe *p = ctx;
	const struct otlp_smp_key *a = &p->e->smps[v - 1].key, *b = p->key;

	return a->prof == b->prof && a->stack == b->stack && a->attrs[0] == b->attrs[0] &&
	       a->attrs[1] == b->attrs[1];
}

static uint32_t grp_hash(const struct otlp_smp_key *key)
{
	int32_t k[4] = {(int32_t)key->prof, key->stack, key->attrs[0], key->attrs[1]};

	return otlp_hash_i32(k, 4);
}

/* Creates the (zeroed) sample of key in group *head (0: a new group, whose
 * hash is h; *head becomes the sample). The pointer is valid until the next
 * sample is created. Returns 0 or -errno. */
static int sample_new(struct otlp_enc *e, const struct otlp_smp_key *key, uint32_t *head,
		      uint32_t h, struct otlp_smp **out)
{
	if (e->n_smps >= UINT32_MAX - 1)
		return -E2BIG;
	struct otlp_smp *arr = array__grow(e->smps, &e->cap_smps, e->n_smps + 1, sizeof(*arr));
	if (!arr)
		return -ENOMEM;
	e->smps = arr;
	uint32_t id = (uint32_t)e->n_smps + 1;
	struct otlp_smp *s = &e->smps[id - 1];
	*s = (struct otlp_smp){.key = *key};
	if (*head) { /* second in the chain: creation order is what counts */
		s->next = e->smps[*head - 1].next;
		e->smps[*head - 1].next = id;
	} else {
		int err = otlp_hset_reserve(&e->smp_set, e->smp_set.n + 1);

		if (err)
			return err;
		otlp_hset_add(&e->smp_set, h, id);
		*head = id;
	}
	e->n_smps++;
	e->profs[key->prof].n_smps++;
	*out = s;
	return 0;
}

/* The sample of group head with CPU attribute cpu_attr, or NULL. */
static struct otlp_smp *group_find_cpu(struct otlp_enc *e, uint32_t head, int32_t cpu_attr)
{
	for (uint32_t i = head; i; i = e->smps[i - 1].next) {
		if (e->smps[i - 1].key.attrs[2] == cpu_attr)
			return &e->smps[i - 1];
	}
	return NULL;
}

/* Adds the timestamps t[0..n) (sorted) to sample s, clamped into [lo, hi]. */
static int sample_add_times(struct otlp_enc *e, struct otlp_smp *s,
			    const struct profile_sample_time *t, size_t n, uint64_t lo, uint64_t hi)
{
	size_t old = s->n_ts;
	if (n > UINT32_MAX - old)
		return -E2BIG;
	uint64_t *ts = arena__alloc(&e->arena, (old + n) * sizeof(*ts));
	if (!ts)
		return -ENOMEM;
	/* merge with what the sample has (rare: another input stack with the same
	 * identity), keeping time order */
	const uint64_t *a = s->ts;
	size_t i = 0, j = 0, k = 0;
	while (i < old || j < n) {
		uint64_t b = j < n ? (t[j].ns < lo ? lo : t[j].ns > hi ? hi : t[j].ns) : 0;

		if (j == n || (i < old && a[i] <= b)) {
			ts[k++] = a[i++];
		} else {
			ts[k++] = b;
			j++;
		}
	}
	s->ts = ts;
	s->n_ts = (uint32_t)(old + n);
	return 0;
}

static int time_cmp(const void *pa, const void *pb)
{
	const struct profile_sample_time *a = pa, *b = pb;

	if (a->cpu != b->cpu)
		return a->cpu < b->cpu ? -1 : 1;
	return a->ns < b->ns ? -1 : a->ns > b->ns;
}

static void insertion_sort(struct profile_sample_time *t, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct profile_sample_time x = t[i];
		size_t j = i;

		while (j > 0 && time_cmp(&t[j - 1], &x) > 0) {
			t[j] = t[j - 1];
			j--;
		}
		t[j] = x;
	}
}

/*
 * A stack's times in[0..n), sorted by (cpu, time), in e->tbuf. Few times:
 * insertion sort. Many: a stable counting sort by CPU, after which each CPU's
 * times are in arrival order, already sorted but for stragglers (insertion
 * sort, or qsort for a CPU whose times are far from sorted). Returns the
 * sorted array, or NULL (-ENOMEM).
 */
static struct profile_sample_time *times_sort(struct otlp_enc *e,
					      const struct profile_sample_time *in, size_t n)
{
	struct profile_sample_time *t = array__grow(e->tbuf, &e->tcap, n ? n : 1, sizeof(*t));
	uint32_t max_cpu = 0;

	if (!t)
		return NULL;
	e->tbuf = t;
	for (size_t i = 0; i < n; i++)
		max_cpu = in[i].cpu > max_cpu ? in[i].cpu : max_cpu;
	if (n <= 32 || max_cpu >= OTLP_CPU_CACHE || max_cpu / 4 > n) {
		memcpy(t, in, n * sizeof(*t));
		if (n <= 32)
			insertion_sort(t, n);
		else
			qsort(t, n, sizeof(*t), time_cmp);
		return t;
	}
	if (!e->tcount) {
		e->tcount = malloc((OTLP_CPU_CACHE + 1) * sizeof(*e->tcount));
		if (!e->tcount)
			return NULL;
	}
	uint32_t *at = e->tcount; /* at[c]: where CPU c's next time goes */
	memset(at, 0, (max_cpu + 2) * sizeof(*at));
	for (size_t i = 0; i < n; i++)
		at[in[i].cpu + 1]++;
	for (uint32_t c = 1; c <= max_cpu; c++)
		at[c] += at[c - 1];
	for (size_t i = 0; i < n; i++)
		t[at[in[i].cpu]++] = in[i];
	for (size_t a = 0, b; a < n; a = b) { /* at[c] now ends CPU c's run */
		bool sorted = true;

		b = at[t[a].cpu];
		for (size_t i = a + 1; i < b && sorted; i++)
			sorted = t[i - 1].ns <= t[i].ns;
		if (sorted)
			continue;
		if (b - a <= 32)
			insertion_sort(t + a, b - a);
		else
			qsort(t + a, b - a, sizeof(*t), time_cmp);
	}
	return t;
}

/* The thread.id and thread.name attributes of a stack's thread, through a
 * per-request record by tid: most threads have many stacks. */
static int thread_attrs(struct otlp_enc *e, const struct profile_stack *st, int32_t *id_attr,
			int32_t *name_attr)
{
	size_t comm_len = strnlen(st->comm, sizeof(st->comm));
	uint32_t t = otlp_idmap_get(&e->thread_by_tid, st->tid);
	struct otlp_store *s = e->dict.st;
	struct otlp_thread *th;
	uint32_t g;
	int err;

	if (t) {
		th = &e->threads[t - 1];
		*id_attr = th->id_attr;
	} else {
		err = otlp_store_attr_int(s, OTLP_K_THREAD_ID, st->tid, &g);
		if (!err)
			err = otlp_dict_use_attr(&e->dict, g, id_attr);
		if (!err)
			err = OTLP_RESERVE(e, threads);
		if (!err)
			err = otlp_idmap_put(&e->thread_by_tid, st->tid,
					     (uint32_t)e->n_threads + 1);
		if (err)
			return err;
		th = &e->threads[e->n_threads++];
		*th = (struct otlp_thread){.id_attr = *id_attr, .name_attr = -1};
	}
	if (th->name_attr >= 0 && strnlen(th->comm, sizeof(th->comm)) == comm_len &&
	    memcmp(th->comm, st->comm, comm_len) == 0) {
		*name_attr = th->name_attr;
		return 0;
	}
	*name_attr = 0;
	if (comm_len) {
		err = otlp_store_attr_str(s, OTLP_K_THREAD_NAME, st->comm, comm_len, &g);
		if (!err)
			err = otlp_dict_use_attr(&e->dict, g, name_attr);
		if (err)
			return err;
	}
	memset(th->comm, 0, sizeof(th->comm));
	memcpy(th->comm, st->comm, comm_len);
	th->name_attr = *name_attr;
	return 0;
}

/* The cpu.logical_number attribute of cpu (one lookup per sample group). */
static int cpu_attr(struct otlp_enc *e, uint32_t cpu, int32_t *idx)
{
	struct otlp_store *s = e->dict.st;
	uint32_t g = cpu < OTLP_CPU_CACHE ? s->cpu_attr[cpu] : 0;
	int err;

	if (!g) {
		err = otlp_store_attr_int(s, OTLP_K_CPU, cpu, &g);
		if (err)
			return err;
		if (cpu < OTLP_CPU_CACHE)
			s->cpu_attr[cpu] = g;
	}
	return otlp_dict_use_attr(&e->dict, g, idx);
}

/* Adds the samples of one stack. */
static int stack_add(struct otlp_enc *e, struct interval *iv, const struct profile_stack *st)
{
	size_t n_frames = (size_t)st->n_kernel + st->n_user;
	struct otlp_smp_key key;
	uint32_t ridx;
	int err;

	if (!st->count)
		return 0;
	if (n_frames && !st->frames)
		return -EINVAL;
	if (!iv->timestamps && st->count > INT64_MAX)
		return -EOVERFLOW;

	memset(&key, 0, sizeof(key));
	if (iv->last_tgid_p1 != st->tgid + 1ull) { /* stacks of a process often follow */
		err = resource_findnew(e, iv->p, st, &ridx);
		if (!err)
			err = profile_findnew(e, iv, ridx, &iv->prof);
		if (err)
			return err;
		iv->last_tgid_p1 = st->tgid + 1;
	}
	key.prof = iv->prof;

	/* leaf first: kernel frames, then user */
	err = otlp_dict_stack(&e->dict, st->frames, n_frames, &key.stack);
	if (!err)
		err = thread_attrs(e, st, &key.attrs[0], &key.attrs[1]);
	if (err)
		return err;

	struct grp_probe probe = {e, &key};
	uint32_t h = grp_hash(&key), head = otlp_hset_find(&e->smp_set, h, grp_eq, &probe);
	struct otlp_smp *s;

	if (!iv->timestamps) { /* one sample per group */
		if (head) {
			s = &e->smps[head - 1];
		} else {
			err = sample_new(e, &key, &head, h, &s);
			if (err)
				return err;
		}
		if (st->count > (uint64_t)(INT64_MAX - s->value))
			return -EOVERFLOW;
		s->value += (int64_t)st->count;
		return 0;
	}

	/* one sample per CPU, its times in order */
	bool seen = head != 0;
	const struct profile_sample_time *t = times_sort(e, st->times, st->n_times);
	if (!t)
		return -ENOMEM;
	for (size_t a = 0, b; a < st->n_times; a = b) {
		for (b = a + 1; b < st->n_times && t[b].cpu == t[a].cpu; b++)
			;
		err = cpu_attr(e, t[a].cpu, &key.attrs[2]);
		if (err)
			return err;
		s = seen ? group_find_cpu(e, head, key.attrs[2]) : NULL;
		if (!s)
			err = sample_new(e, &key, &head, h, &s);
		if (!err)
			err = sample_add_times(e, s, t + a, b - a, iv->lo, iv->hi);
		if (err)
			return err;
	}
	return 0;
}

/* Whether interval p can use the timestamps shape for every sample. */
static bool timestamps_usable(const struct otlp_enc *e, const struct profile *p)
{
	if (!e->opts->timestamps || !p->times_complete || !p->duration_ns)
		return false;
	for (size_t i = 0; i < p->n_stacks; i++) {
		const struct profile_stack *st = &p->stacks[i];

		if (st->count && (!st->times || st->n_times != st->count))
			return false;
	}
	return true;
}

/* Requests the input a few stacks ahead of stack i: the stack records, and
 * the frame pointers and times that they point to, sit apart from each other
 * and from everything the encoder has touched, so each would be a cache miss
 * when reached. */
static inline void stack_prefetch(const struct profile *p, size_t i)
{
	enum { AHEAD = 2, LINES = 4 };

	if (i + 2 * AHEAD < p->n_stacks)
		__builtin_prefetch(&p->stacks[i + 2 * AHEAD]);
	if (i + AHEAD >= p->n_stacks)
		return;
	const struct profile_stack *st = &p->stacks[i + AHEAD];
	size_t n = (size_t)st->n_kernel + st->n_user;
	const char *f = (const char *)st->frames, *t = (const char *)st->times;

	for (size_t l = 0; l < LINES && f && l * 64 < n * sizeof(*st->frames); l++)
		__builtin_prefetch(f + l * 64);
	for (size_t l = 0; l < LINES && t && l * 64 < st->n_times * sizeof(*st->times); l++)
		__builtin_prefetch(t + l * 64);
}

static int interval_add(struct otlp_enc *e, const struct profile *p, uint32_t index)
{
	struct interval iv = {.p = p, .index = index};
	const struct otlp_signal *sig;
	int err;

	if (!p || (p->n_stacks && !p->stacks))
		return -EINVAL;
	sig = signal_find(p->signal);
	if (!sig)
		return -EINVAL;
	if (p->period_ns > INT64_MAX)
		return -EOVERFLOW;
	iv.timestamps = timestamps_usable(e, p);
	/* strings interned only when a profile will use them (no orphans) */
	bool used = false;
	for (size_t i = 0; i < p->n_stacks && !used; i++)
		used = p->stacks[i].count > 0;
	const char *types[4] = {sig->sample_type, sig->sample_unit, sig->period_type,
				sig->period_unit};
	for (int i = 0; i < 4 && used; i++) {
		err = otlp_dict_string(&e->dict, types[i], strlen(types[i]), &iv.types[i]);
		if (err)
			return err;
	}
	iv.lo = p->time_ns;
	iv.hi = p->duration_ns > UINT64_MAX - p->time_ns ? UINT64_MAX
							 : p->time_ns + p->duration_ns - 1;
	otlp_idmap_clear(&e->res_by_tgid); /* process info is per interval */
	/* room for the stacks and samples likely to come (a stack's times split
	 * over a few CPUs) and their groups (one per stack), so that neither the
	 * arrays nor the sets grow (and copy) on the way there */
	size_t expect = e->n_smps, frames = 0;
	for (size_t i = 0; i < p->n_stacks && expect < UINT32_MAX; i++) {
		const struct profile_stack *st = &p->stacks[i];

		expect += iv.timestamps ? (st->count < 4 ? st->count : 4) : 1;
		frames += (size_t)st->n_kernel + st->n_user;
	}
	if (expect > UINT32_MAX - 1)
		expect = UINT32_MAX - 1;
	err = otlp_dict_reserve_stacks(&e->dict, p->n_stacks, frames);
	/* a fresh store (the first interval) is sized once, not doubled on
	 * the way: about one new frame per distinct stack, as a call tree's
	 * stacks mostly differ in a frame or two near the leaf */
	if (!err && !e->dict.st->n_frames)
		err = otlp_store_reserve(e->dict.st, frames < p->n_stacks ? frames : p->n_stacks,
					 e->store_max_bytes);
	if (err)
		return err;
	if (expect > e->cap_smps) {
		struct otlp_smp *arr = array__grow(e->smps, &e->cap_smps, expect, sizeof(*arr));

		if (!arr)
			return -ENOMEM;
		e->smps = arr;
		mem__prefault(arr + e->n_smps, (expect - e->n_smps) * sizeof(*arr));
	}
	err = otlp_hset_reserve(&e->smp_set, e->smp_set.n + p->n_stacks);
	if (err)
		return err;
	for (size_t i = 0; i < p->n_stacks; i++) {
		stack_prefetch(p, i);
		err = stack_add(e, &iv, &p->stacks[i]);
		if (err)
			return err;
	}
	return 0;
}

/* Regroups samples by profile and profiles by resource, keeping creation
 * order within each (so the output does not depend on hash order). The
 * samples move in place: each one's place goes into its next field (the
 * group chains are done with), then every cycle of the permutation is
 * followed, a swap putting one sample where it belongs. */
static int model_finish(struct otlp_enc *e)
{
	uint32_t *order = array__grow(e->prof_order, &e->cap_prof_order,
				      e->n_profs ? e->n_profs : 1, sizeof(*order));
	size_t at = 0;

	if (!order)
		return -ENOMEM;
	e->prof_order = order;
	for (size_t i = 0; i < e->n_profs; i++) {
		e->profs[i].first_smp = at;
		at += e->profs[i].n_smps;
		e->profs[i].n_smps = 0;
	}
	for (size_t i = 0; i < e->n_smps; i++) {
		struct otlp_prof *pr = &e->profs[e->smps[i].key.prof];

		e->smps[i].next = (uint32_t)(pr->first_smp + pr->n_smps++);
	}
	for (size_t i = 0; i < e->n_smps; i++) {
		while (e->smps[i].next != i) {
			struct otlp_smp tmp = e->smps[e->smps[i].next];

			e->smps[e->smps[i].next] = e->smps[i];
			e->smps[i] = tmp;
		}
	}
	otlp_hset_clear(&e->smp_set); /* its indices were into the old order */

	at = 0;
	for (size_t i = 0; i < e->n_res; i++) {
		e->res[i]->first_prof = at;
		at += e->res[i]->n_profs;
		e->res[i]->n_profs = 0;
	}
	for (size_t i = 0; i < e->n_profs; i++) {
		struct otlp_res *r = e->res[e->profs[i].res];

		order[r->first_prof + r->n_profs++] = (uint32_t)i;
	}
	return 0;
}

int otlp_enc_emit(struct otlp_enc *e, const struct otlp_view *v, size_t len)
{
	struct encoded_buf *arr = array__grow(e->out, &e->cap_out, e->n_out + 1, sizeof(*arr));

	if (!arr)
		return -ENOMEM;
	e->out = arr;
	uint8_t *data = malloc(len ? len : 1);
	if (!data)
		return -ENOMEM;
	if (e->fresh) /* a reused context's allocator mostly hands back present pages */
		mem__prefault(data, len);
	if (otlp_wire_write(&e->wire, v, data) != len) {
		free(data);
		return -EIO;
	}
	e->out[e->n_out++] = (struct encoded_buf){.data = data, .len = len};
	return 0;
}

/* The whole model as one request, or split when over max_bytes (0: no limit). */
static int emit_all(struct otlp_enc *e, size_t max_bytes)
{
	struct otlp_view v = {.e = e, .first_res = 0, .last_res = e->n_res, .dict = true};
	size_t len;
	int err;

	err = otlp_wire_measure(&e->wire, &v, &len);
	if (err)
		return err;
	if (max_bytes && len > max_bytes && e->n_res > 1)
		return otlp_split_emit(e, max_bytes);
	return otlp_enc_emit(e, &v, len);
}

/* ---- the context ---- */

struct otlp_encoder *otlp_encoder__new(const struct otlp_encoder_opts *opts)
{
	struct otlp_encoder *enc = calloc(1, sizeof(*enc));

	if (!enc) {
		errno = ENOMEM;
		return NULL;
	}
	enc->max_cache_bytes = opts && opts->max_cache_bytes ? opts->max_cache_bytes
							     : OTLP_DEFAULT_MAX_CACHE_BYTES;
	return enc;
}

void otlp_encoder__free(struct otlp_encoder *enc)
{
	if (!enc)
		return;
	enc_deinit(&enc->enc);
	otlp_store_deinit(&enc->store);
	free(enc);
}

/* Bytes of the call memory e keeps: arena chunks, arrays, hash slots. */
static size_t enc_bytes(const struct otlp_enc *e)
{
	return e->arena.bytes + otlp_dict_bytes(&e->dict) + e->cap_res * sizeof(*e->res) +
	       e->res_keys.cap * (sizeof(*e->res_keys.strs) + sizeof(*e->res_keys.lens)) +
	       e->res_keys.n_slots * sizeof(*e->res_keys.slots) +
	       e->res_by_tgid.cap * sizeof(*e->res_by_tgid.slots) +
	       e->cap_profs * sizeof(*e->profs) + e->cap_prof_order * sizeof(*e->prof_order) +
	       e->cap_smps * sizeof(*e->smps) + e->smp_set.cap * sizeof(*e->smp_set.slots) +
	       e->thread_by_tid.cap * sizeof(*e->thread_by_tid.slots) +
	       e->cap_threads * sizeof(*e->threads) + e->tcap * sizeof(*e->tbuf) +
	       (e->tcount ? (OTLP_CPU_CACHE + 1) * sizeof(*e->tcount) : 0) + e->kcap +
	       e->wire.cap * sizeof(*e->wire.sizes);
}

void otlp_encoder__stats(const struct otlp_encoder *enc, struct otlp_encoder_stats *stats)
{
	*stats = enc->stats;
	stats->cache_frames = enc->store.n_frames;
	stats->cache_bytes = otlp_store_bytes(&enc->store);
	stats->work_bytes = enc_bytes(&enc->enc);
}

int otlp_encoder__encode(struct otlp_encoder *enc, const struct profile *const *profiles, size_t n,
			 const struct otlp_encode_opts *opts, struct encoded_buf **out,
			 size_t *n_out)
{
	static const struct otlp_encode_opts defaults;
	struct otlp_store *st;
	struct otlp_enc *e;
	int err;

	if (!enc || !out || !n_out || (n && !profiles))
		return -EINVAL;
	*out = NULL;
	*n_out = 0;
	if (n >= UINT32_MAX)
		return -E2BIG;
	st = &enc->store;
	e = &enc->enc;

	/* the bound, checked between calls: a store over it starts over */
	if (st->ready && (otlp_store_bytes(st) > enc->max_cache_bytes || st->gen == UINT32_MAX)) {
		otlp_store_deinit(st);
		enc->stats.cache_clears++;
	}
	e->fresh = !st->ready;
	e->store_max_bytes = enc->max_cache_bytes;
	if (!st->ready) {
		err = otlp_store_init(st);
		if (err)
			return err;
	}

	err = enc_begin(e, st, opts ? opts : &defaults);
	for (size_t i = 0; !err && i < n; i++)
		err = interval_add(e, profiles[i], (uint32_t)i);
	if (!err && e->n_res)
		err = model_finish(e);
	if (!err && e->n_res)
		err = emit_all(e, e->opts->max_request_bytes);
	if (!err) {
		*out = e->out;
		*n_out = e->n_out;
		e->out = NULL;
		e->n_out = e->cap_out = 0;
		enc->stats.encodes++;
	}
	enc_drop_out(e);
	e->opts = NULL;
	return err;
}

int otlp__encode(const struct profile *const *profiles, size_t n,
		 const struct otlp_encode_opts *opts, struct encoded_buf **out, size_t *n_out)
{
	struct otlp_encoder enc = {.max_cache_bytes = SIZE_MAX};
	int err;

	if (!out || !n_out || (n && !profiles))
		return -EINVAL;
	err = otlp_encoder__encode(&enc, profiles, n, opts, out, n_out);
	enc_deinit(&enc.enc);
	otlp_store_deinit(&enc.store);
	return err;
}
