/* http_json.h: answer a request with a JSON document (http_json.c). */
#ifndef PSS_HTTP_JSON_H
#define PSS_HTTP_JSON_H

#include <cjson/cJSON.h>

#include "http_server.h"

/* Answer r with j (no-store, nosniff) and delete j; 500 when it cannot be printed. */
void http_respond_cjson(http_request *r, int status, cJSON *j);

#endif
