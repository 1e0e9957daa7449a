// SPDX-License-Identifier: BSD-2-Clause
/* BPF programs' run-time counters (see bpf_run_stats.h). */
#include <bpf/bpf.h>
#include <errno.h>

#include "bpf_run_stats.h"

int bpf_run_stats__sum(const struct bpf_object *obj, uint64_t *run_ns, uint64_t *run_cnt)
{
	struct bpf_program *prog;

	*run_ns = *run_cnt = 0;
	bpf_object__for_each_program (prog, obj) {
		struct bpf_prog_info info = {0};
		uint32_t len = sizeof(info);

		if (bpf_program__fd(prog) < 0)
			continue;
		if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len))
			return -errno;
		*run_ns += info.run_time_ns;
		*run_cnt += info.run_cnt;
	}
	return 0;
}
