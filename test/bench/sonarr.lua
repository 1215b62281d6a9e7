-- wrk script: POST /webhook/sonarr with Sonarr "Download" payloads for N different folders.
--
--   wrk -s sonarr.lua URL -- FIXTURE [FOLDERS] [PREFIX] [STOP_AFTER]
--
-- FIXTURE     the Sonarr Download payload to start from (test/fixtures/sonarr-download.json)
-- FOLDERS     how many different series to rotate through (default 2000)
-- PREFIX      the series root the payloads use (default /tv)
-- STOP_AFTER  when > 0, each thread stops after that many answers (used to fill the queue with
--             exactly FOLDERS folders: run with one thread and STOP_AFTER = FOLDERS)
--
-- Every payload is the fixture with its series path (and the file paths under it) moved to
-- PREFIX/Bench Show NNNNNN (YEAR), so each request names a different season folder. The
-- requests are built once per thread, before the run, so the client spends its time sending
-- (past 20,000 folders they are built as they are sent instead of kept).

local fixture_series = "/home/user/media/tv/Breaking Bad (2008)"
local requests = {}
local fixture, pattern, headers, prefix
local folders, stop_after, answers, index = 2000, 0, 0, 0

local function plain(s)
   return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

local function read_all(path)
   local f = assert(io.open(path, "rb"))
   local s = f:read("*a")
   f:close()
   return s
end

-- the request for folder i: the fixture moved to PREFIX/Bench Show i
local function build(i)
   local series = string.format("%s/Bench Show %06d (%d)", prefix, i, 1990 + i % 30)
   local body = fixture:gsub(pattern, (series:gsub("%%", "%%%%")))
   return wrk.format("POST", "/webhook/sonarr", headers, body)
end

-- setup() runs in the main script state; thread:set() gives each thread its number
thread_id = 0
local counter = 0

function setup(thread)
   thread:set("thread_id", counter)
   counter = counter + 1
end

function init(args)
   fixture = read_all(args[1])
   folders = tonumber(args[2] or "2000")
   prefix = args[3] or "/tv"
   stop_after = tonumber(args[4] or "0")
   assert(fixture:find(fixture_series, 1, true), "the fixture has no series path to rewrite")
   headers = {
      ["Content-Type"] = "application/json",
      ["User-Agent"] = "Sonarr/4.0.16.2944 (debian 12)",
      ["Accept"] = "application/json",
   }
   pattern = plain(fixture_series)
   if folders <= 20000 then
      for i = 1, folders do
         requests[i] = build(i)
      end
   end
   -- threads start at different places in the rotation
   index = (thread_id * 7919) % folders
   -- only asked for when needed: a response() callback makes wrk parse every answer's headers
   if stop_after > 0 then
      response = function(status, headers, body)
         answers = answers + 1
         if answers >= stop_after then
            wrk.thread:stop()
         end
      end
   end
end

function request()
   index = index % folders + 1
   -- many folders (the memory benchmark): built as they are sent, not kept
   return requests[index] or build(index)
end
