# frozen_string_literal: true

# The Ruby snippets of the user's document (docs/SESSION_RECOVERY.md, a copy
# of the seed), by the heading they sit under, so specs run them as written.
module SeedSnippets
  PATH = File.expand_path("../../docs/SESSION_RECOVERY.md", __dir__)
  Snippet = Struct.new(:heading, :code, :line)

  def self.all
    @all ||= begin
      snippets = []
      heading = nil
      fence = nil # the language of the fenced block we are in
      code = []
      start = nil
      File.readlines(PATH).each_with_index do |line, index|
        if fence
          if line.start_with?("```")
            snippets << Snippet.new(heading, code.join, start) if fence == "ruby"
            fence = nil
          else
            code << line
          end
        elsif line.start_with?("```")
          fence = line[3..].strip
          code = []
          start = index + 2
        elsif line =~ /\A#+\s+(.*)/
          heading = Regexp.last_match(1).strip
        end
      end
      snippets
    end
  end

  def self.[](heading)
    found = all.select { |snippet| snippet.heading == heading }
    raise "no ruby snippet under heading #{heading.inspect} in #{PATH}" if found.empty?

    found
  end
end
