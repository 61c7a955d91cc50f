-- Prepended to every script that calls slices(): Lua's unpack() pushes each value
-- onto the C stack (LUAI_MAXCSTACK, about 8000 slots), so a script hands a batch's
-- fields to one Redis command UNPACK_SLICE at a time (the loader defines the size:
-- rxfleet.stores.lua.UNPACK_SLICE).
local function slices(list, size)
  local i = 0
  return function()
    if i >= #list then return nil end
    local slice = {unpack(list, i + 1, math.min(i + size, #list))}
    i = i + size
    return slice
  end
end
