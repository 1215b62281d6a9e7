/* http_json.c: answering with a cJSON document, beside http_respond (one place for the headers
 * every JSON answer carries). */
#include "http_json.h"

#include <string.h>

void http_respond_cjson(http_request *r, int status, cJSON *j)
{
    char *text = cJSON_PrintUnformatted(j);
    if (text)
        http_respond(r, status, "application/json", text, strlen(text),
                     "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n");
    else
        http_respond_json_error(r, 500, "out of memory");
    cJSON_free(text);
    cJSON_Delete(j);
}
