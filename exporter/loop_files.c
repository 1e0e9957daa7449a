// SPDX-License-Identifier: BSD-2-Clause
/*
 * The I/O loop's file writes, on the exporter thread. Two independent
 * streams share one mechanism, the atomic replace (struct file_op: openat of
 * dir/.name.tmp, writes, close, renameat over dir/name, each an io_uring op
 * started from the completion of the one before; after a failure the tmp
 * file is closed and unlinked, so the previous version stays):
 *
 *   - --otlp-file copies of the queued requests (NNNNNN.binpb), in request
 *     order, one at a time; a request goes to the network only once its copy
 *     is written (see otlp_exporter.c);
 *   - profile files, queued by otlp_exporter__write_file() from any thread
 *     on their own FIFO (ex->pf_head, under ex->lock), written one at a time
 *     in the order queued. They never wait for the HTTP side: its request in
 *     flight or in backoff only holds the socket, and the loop starts the next
 *     profile file as soon as the previous one completes.
 *
 * Profile file queue. Many producers, one consumer (the loop), a mutex (a
 * few files per flush). A write not started yet is replaced by a newer write
 * of the same path (counted as superseded): the newer bytes are what the
 * atomic replace would leave anyway, so the last write queued wins and a
 * slow disk does not pile up versions of one file. file_queue_bytes counts
 * the bytes waiting plus the file being written; a write that would push it
 * over max_file_bytes is refused (-ENOBUFS, counted as dropped; the caller
 * logs it), except when the queue is empty, so one file larger than the
 * bound is still written. Memory: max_file_bytes, or one file when larger.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "otlp_loop.h"

#define WRITE_CHUNK (1u << 30) /* bytes per write op */

/* ---- the atomic replace ------------------------------------------------------- */

static void fop_submit(struct loop *l, struct file_op *op)
{
	struct io_uring_sqe *sqe = otlp_sqe_get(l);
	size_t left;

	switch (op->step) {
	case FOP_OPEN:
		io_uring_prep_openat(sqe, AT_FDCWD, op->tmp,
				     O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		break;
	case FOP_WRITE:
		left = op->len - op->off;
		io_uring_prep_write(sqe, op->fd, op->data + op->off,
				    left > WRITE_CHUNK ? WRITE_CHUNK : (unsigned)left, op->off);
		break;
	case FOP_CLOSE:
		io_uring_prep_close(sqe, op->fd);
		break;
	case FOP_RENAME:
		io_uring_prep_renameat(sqe, AT_FDCWD, op->tmp, AT_FDCWD, op->dst, 0);
		break;
	case FOP_UNLINK:
		io_uring_prep_unlinkat(sqe, AT_FDCWD, op->tmp, 0);
		break;
	case FOP_IDLE:
		abort();
	}
	io_uring_sqe_set_data64(sqe, UD(op->kind, 0));
	l->inflight++;
}

void file_op__start(struct loop *l, struct file_op *op, enum ud_kind kind, const char *tmp,
		    const char *dst, const uint8_t *data, size_t len)
{
	*op = (struct file_op){
		.step = FOP_OPEN,
		.kind = kind,
		.fd = -1,
		.data = data,
		.len = len,
		.tmp = tmp,
		.dst = dst,
	};
	fop_submit(l, op);
}

/* The loop is exiting (teardown cancelled what was in flight): no new SQE,
 * the steps left run here. step is the next step to run. */
static void fop_finish_sync(struct file_op *op)
{
	if (op->step == FOP_WRITE && !op->err)
		op->err = -ECANCELED; /* not all written */
	if (op->fd >= 0) {
		if (close(op->fd) && !op->err)
			op->err = -errno;
		op->fd = -1;
	}
	if (!op->err && op->step != FOP_UNLINK && rename(op->tmp, op->dst))
		op->err = -errno;
	if (op->err)
		unlink(op->tmp);
	op->step = FOP_IDLE;
}

bool file_op__on_cqe(struct loop *l, struct file_op *op, int res)
{
	switch (op->step) {
	case FOP_OPEN:
		if (res < 0) { /* nothing was created */
			op->err = res;
			op->step = FOP_IDLE;
			return true;
		}
		op->fd = res;
		op->step = op->len ? FOP_WRITE : FOP_CLOSE;
		break;
	case FOP_WRITE:
		if (res == -EINTR || res == -EAGAIN)
			break; /* again, same offset */
		if (res <= 0) {
			op->err = res ? res : -EIO;
			op->step = FOP_CLOSE;
			break;
		}
		op->off += (size_t)res;
		if (op->off >= op->len)
			op->step = FOP_CLOSE;
		break;
	case FOP_CLOSE:
		/* The descriptor is gone whatever the result; an error here is a
		 * deferred write error (NFS, quota). */
		op->fd = -1;
		if (res < 0 && !op->err)
			op->err = res;
		op->step = op->err ? FOP_UNLINK : FOP_RENAME;
		break;
	case FOP_RENAME:
		if (res < 0) {
			op->err = res;
			op->step = FOP_UNLINK;
			break;
		}
		op->step = FOP_IDLE;
		return true;
	case FOP_UNLINK:
		op->step = FOP_IDLE;
		return true;
	case FOP_IDLE:
		return true;
	}
	if (l->exiting) {
		fop_finish_sync(op);
		return true;
	}
	fop_submit(l, op);
	return false;
}

/* ---- --otlp-file ------------------------------------------------------------------ */

static void otlp_file_finish(struct otlp_exporter *ex, int err)
{
	struct loop *l = &ex->l;
	struct qreq *f = l->fw;

	if (err)
		otlp_rlog(l, LOG_FILE, "cannot write %s: %s", l->fw_dst, strerror(-err));
	pthread_mutex_lock(&ex->lock);
	if (err)
		ex->st.file_errors++;
	else
		ex->st.files_written++;
	f->writing = false;
	bool dropped = f->dropped;
	if (!dropped)
		f->file_done = true;
	pthread_mutex_unlock(&ex->lock);
	if (dropped)
		otlp_qreq_free(f);
	l->fw = NULL;
}

void otlp_file__on_cqe(struct otlp_exporter *ex, int res)
{
	struct loop *l = &ex->l;
	if (l->fw && file_op__on_cqe(l, &l->fw_op, res))
		otlp_file_finish(ex, l->fw_op.err);
}

void otlp_file__progress(struct otlp_exporter *ex)
{
	struct loop *l = &ex->l;

	if (!ex->file_dir || l->fw)
		return;
	pthread_mutex_lock(&ex->lock);
	struct qreq *f = ex->file_cursor;
	if (f) {
		f->writing = true;
		ex->file_cursor = f->next;
	}
	pthread_mutex_unlock(&ex->lock);
	if (!f)
		return;
	l->fw = f;
	l->file_seq++;
	snprintf(l->fw_tmp, sizeof(l->fw_tmp), "%s/.%06llu.binpb.tmp", ex->file_dir,
		 (unsigned long long)l->file_seq);
	snprintf(l->fw_dst, sizeof(l->fw_dst), "%s/%06llu.binpb", ex->file_dir,
		 (unsigned long long)l->file_seq);
	file_op__start(l, &l->fw_op, UD_FILE, l->fw_tmp, l->fw_dst, f->body, f->len);
}

/* ---- profile files ------------------------------------------------------------------ */

static void pfile_free(struct pfile *p)
{
	if (!p)
		return;
	free(p->data);
	free(p);
}

int otlp_exporter__write_file(struct otlp_exporter *ex, const char *dir, const char *name,
			      void *data, size_t len)
{
	struct pfile *p = NULL, *victim = NULL;
	int err = 0;

	if (!ex || !dir || !*dir || !name || !*name || strchr(name, '/')) {
		free(data);
		return -EINVAL;
	}
	size_t dl = strlen(dir), nl = strlen(name);
	size_t dst_len = dl + 1 + nl, tmp_len = dl + 2 + nl + 4; /* dir/name, dir/.name.tmp */
	if (tmp_len >= PATH_MAX) {
		free(data);
		return -ENAMETOOLONG;
	}
	p = malloc(sizeof(*p) + dst_len + 1 + tmp_len + 1);
	if (p) {
		p->next = NULL;
		p->data = data;
		p->len = len;
		sprintf(p->path, "%s/%s", dir, name);
		p->tmp = p->path + dst_len + 1;
		sprintf(p->tmp, "%s/.%s.tmp", dir, name);
	}

	pthread_mutex_lock(&ex->lock);
	if (ex->stopping) {
		err = -ESHUTDOWN;
		goto unlock;
	}
	if (!p) {
		ex->st.profile_files_dropped++;
		err = -ENOMEM;
		goto unlock;
	}
	/* A waiting write of the same file is superseded (at most one waits:
	 * each write_file() of that path replaced the one before). */
	struct pfile *prev = NULL;
	for (victim = ex->pf_head; victim; prev = victim, victim = victim->next)
		if (!strcmp(victim->path, p->path))
			break;
	uint64_t bytes = ex->st.file_queue_bytes - (victim ? victim->len : 0);
	if (bytes && bytes + len > ex->max_file_bytes) {
		victim = NULL; /* the older write stays queued */
		ex->st.profile_files_dropped++;
		err = -ENOBUFS;
		goto unlock;
	}
	if (victim) {
		if (prev)
			prev->next = victim->next;
		else
			ex->pf_head = victim->next;
		if (ex->pf_tail == victim)
			ex->pf_tail = prev;
		ex->st.profile_files_superseded++;
	}
	if (ex->pf_tail)
		ex->pf_tail->next = p;
	else
		ex->pf_head = p;
	ex->pf_tail = p;
	ex->st.file_queue_bytes = bytes + len;
	if (ex->st.file_queue_bytes > ex->st.file_queue_bytes_max)
		ex->st.file_queue_bytes_max = ex->st.file_queue_bytes;
	ex->st.profile_files_queued++;
unlock:
	pthread_mutex_unlock(&ex->lock);
	pfile_free(victim);
	if (err) {
		if (p)
			p->data = NULL;
		free(p);
		free(data);
		return err;
	}
	otlp_wake(ex);
	return 0;
}

static void pfile_done(struct otlp_exporter *ex, int err)
{
	struct loop *l = &ex->l;
	struct pfile *p = l->pw;

	if (err)
		otlp_rlogk(l, LOG_PROFILE_FILE, err,
			   "cannot write %s: %s (the previous version is kept)", p->path,
			   strerror(-err));
	pthread_mutex_lock(&ex->lock);
	if (err)
		ex->st.profile_file_errors++;
	else
		ex->st.profile_files_written++;
	ex->st.file_queue_bytes -= p->len;
	pthread_mutex_unlock(&ex->lock);
	pfile_free(p);
	l->pw = NULL;
}

void pfile__on_cqe(struct otlp_exporter *ex, int res)
{
	struct loop *l = &ex->l;
	if (l->pw && file_op__on_cqe(l, &l->pw_op, res))
		pfile_done(ex, l->pw_op.err);
}

void pfile__progress(struct otlp_exporter *ex)
{
	struct loop *l = &ex->l;

	if (l->pw)
		return;
	pthread_mutex_lock(&ex->lock);
	struct pfile *p = ex->pf_head;
	if (p) {
		ex->pf_head = p->next;
		if (!ex->pf_head)
			ex->pf_tail = NULL;
	}
	pthread_mutex_unlock(&ex->lock);
	if (!p)
		return;
	l->pw = p;
	file_op__start(l, &l->pw_op, UD_PFILE, p->tmp, p->path, p->data, p->len);
}

bool pfile__idle(struct otlp_exporter *ex)
{
	pthread_mutex_lock(&ex->lock);
	bool empty = !ex->pf_head;
	pthread_mutex_unlock(&ex->lock);
	return empty && !ex->l.pw;
}

void pfile__teardown(struct otlp_exporter *ex)
{
	struct loop *l = &ex->l;
	uint64_t left = 0;

	/* A write still here has an op the ring did not complete (a drained ring
	 * finished it through its last completion). */
	if (l->pw) {
		left++;
		l->pw = NULL; /* leaked on purpose: the kernel may still read it */
	}
	pthread_mutex_lock(&ex->lock);
	struct pfile *q = ex->pf_head;
	ex->pf_head = ex->pf_tail = NULL;
	for (struct pfile *p = q; p; p = p->next)
		left++;
	ex->st.profile_file_errors += left;
	ex->st.file_queue_bytes = 0;
	pthread_mutex_unlock(&ex->lock);
	while (q) {
		struct pfile *next = q->next;
		pfile_free(q);
		q = next;
	}
	struct ratelog *r = &l->logs[LOG_PROFILE_FILE];
	if (r->suppressed)
		fprintf(stderr,
			"pipeline: %llu more profile file write(s) failed in the last %llu s (not "
			"logged one by one)\n",
			(unsigned long long)r->suppressed,
			(unsigned long long)((now_ns() - r->last_ns) / NSEC_PER_SEC));
	r->suppressed = 0;
	if (left)
		fprintf(stderr,
			"pipeline: %llu profile file write(s) not finished at exit (the disk did "
			"not complete them in %llu s; previous versions are kept)\n",
			(unsigned long long)left,
			(unsigned long long)(FILE_DRAIN_NS / NSEC_PER_SEC));
}

void pfile__free_queue(struct otlp_exporter *ex)
{
	while (ex->pf_head) {
		struct pfile *next = ex->pf_head->next;
		pfile_free(ex->pf_head);
		ex->pf_head = next;
	}
	ex->pf_tail = NULL;
}
