# frozen_string_literal: true

# sig/master.rbs states the public API; the option lists in Ruby are the one
# place options are defined (lib/master/options.rb, Queue::OPTIONS). These
# examples keep the two from drifting apart.
RSpec.describe "sig/master.rbs" do
  let(:rbs) { File.read(File.expand_path("../sig/master.rbs", __dir__)) }

  # The keyword names of `def initialize` in the signature of `klass`.
  def initialize_keywords(klass)
    body = rbs[/class #{klass}\b.*?def initialize: \((.*?)\) -> void/m, 1]
    raise "no initialize for #{klass} in sig/master.rbs" unless body

    body.scan(/\??(\w+):/).flatten.map(&:to_sym)
  end

  it "lists every option of SessionRecovery.new, and no other" do
    expect(initialize_keywords("SessionRecovery") - %i[task_id budget]).to match_array(MASTER::Options::SESSION.keys)
  end

  it "lists every option of Queue.new, and no other" do
    expect(initialize_keywords("Queue")).to match_array(MASTER::Queue::OPTIONS.keys)
  end

  it "names every public method of SessionRecovery" do
    signed = rbs[/class SessionRecovery\b(.*?)\n  end/m, 1].scan(/def (?:self\.)?([\w?!]+):/).flatten
    public_methods = MASTER::SessionRecovery.public_instance_methods(false).map(&:to_s) - %w[inspect]
    expect(public_methods - signed).to eq([])
  end
end
