/// The Lua script that raises one revocation mark atomically.
///
/// `KEYS[1]` is the key, `ARGV[1]` the new timestamp (epoch seconds, decimal), `ARGV[2]` the
/// time to live in seconds. When the key holds a string that is a decimal integer greater
/// than or equal to the new timestamp, nothing changes and the script returns 0. Otherwise
/// (no key, an older timestamp, or a value that is not a decimal integer, of any Redis type)
/// it sets the new timestamp with the time to live and returns 1: these keys belong to
/// Herald and the API, and a value the API cannot read protects nobody, so it is replaced.
///
/// Only a non-empty run of digits with an optional minus sign counts as a number; Lua's own
/// `tonumber` would also accept `0x10` or `1e9`.
enum RevocationScript {
    static let source = """
        local current = nil
        if redis.call('TYPE', KEYS[1])['ok'] == 'string' then
          local value = redis.call('GET', KEYS[1])
          if string.match(value, '^%-?%d+$') then current = tonumber(value) end
        end
        if current ~= nil and current >= tonumber(ARGV[1]) then return 0 end
        redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
        return 1
        """

    static let sourceBytes = Array(source.utf8)
}
