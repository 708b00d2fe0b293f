/* api.h - the /v1 routes of dispatchd (docs/api.md). */
#ifndef DISPATCH_API_H
#define DISPATCH_API_H

#include "http.h"

/* The route table, terminated by an entry with a NULL pattern. */
extern const struct http_route api_routes[];

#endif
