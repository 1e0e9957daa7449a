/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * OTLP export settings: flags first, then the OpenTelemetry environment
 * variables (OTEL_EXPORTER_OTLP_[PROFILES_]ENDPOINT, _HEADERS, _COMPRESSION,
 * _TIMEOUT; OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME), resolved once at
 * start into the exporter's and the encoder's options. Bad values are
 * reported naming the flag or variable.
 */
#ifndef PIPELINE_OTLP_SETUP_H
#define PIPELINE_OTLP_SETUP_H

#include <limits.h>
#include <stdbool.h>

#include "config.h"
#include "encoder.h"
#include "exporter.h"

struct otlp_setup {
	bool enabled; /* an endpoint was configured */
	char *url;
	char **headers; /* "Key: Value" */
	size_t n_headers;
	struct otlp_attr *env_attrs; /* OTEL_RESOURCE_ATTRIBUTES, one allocation */
	size_t n_env_attrs;
	struct otlp_attr *resource_attrs; /* env_attrs + service.name */
	size_t n_resource_attrs;
	char user_agent[64];
	char file_dir[PATH_MAX];
	struct otlp_exporter_opts exporter;
	struct otlp_encode_opts encoder;
};

/* Fills *s from cfg and the environment. Returns 0 (s->enabled says whether
 * an endpoint is configured) or -EINVAL after printing what is wrong. */
int otlp_setup__init(struct otlp_setup *s, const struct pipeline_config *cfg);
/* Frees what init allocated. Accepts a zeroed struct. */
void otlp_setup__deinit(struct otlp_setup *s);

#endif /* PIPELINE_OTLP_SETUP_H */
