-- wrk: GET with one bearer token (TOKEN in the environment).
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
