# frozen_string_literal: true

# The compiled Rust core. `rake compile` leaves it beside this file in a
# checkout; `gem install` puts it in the gem's extension directory, which is
# on the load path.
begin
  require_relative "master.so"
rescue LoadError
  begin
    require "master/master"
  rescue LoadError => e
    raise LoadError, "#{e.message}\nThe master extension is not built: run `rake compile` in the gem's " \
                     "directory, or reinstall the gem."
  end
end
