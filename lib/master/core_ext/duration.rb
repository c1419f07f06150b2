# frozen_string_literal: true

# `7.days` as the seed's cleanup example writes it, for code without
# ActiveSupport. Each method is defined only if nothing defined it before,
# and returns plain seconds; ActiveSupport, loaded before or after, keeps its
# own Duration versions.
class Numeric
  { minute: 60, minutes: 60, hour: 3600, hours: 3600, day: 86_400, days: 86_400 }.each do |name, seconds|
    next if method_defined?(name)

    define_method(name) { self * seconds }
  end
end
